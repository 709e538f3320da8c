import { SelectableValue } from '@grafana/data';
import { getTemplateSrv } from '@grafana/runtime';
import { InlineField, Input, MultiSelect, Select } from '@grafana/ui';
import React, { useEffect, useState } from 'react';

import type { FaceIDDataSource } from '../datasource';
import { ResourceName } from '../types';

export const LABEL_WIDTH = 14;

/** Options of a backend resource; none while loading or when the exporter cannot be reached. */
export function useResourceOptions(
  datasource: FaceIDDataSource,
  resource: ResourceName,
  params?: Record<string, string>
): Array<SelectableValue<string>> {
  const [options, setOptions] = useState<Array<SelectableValue<string>>>([]);
  const key = JSON.stringify(params ?? {});
  useEffect(() => {
    let live = true;
    datasource.fetchOptions(resource, params).then(
      (opts) => {
        if (live) {
          setOptions(opts.map((o) => ({ value: o.value, label: o.label, description: o.description })));
        }
      },
      () => {
        // Save & test explains connection problems; the fields still take typed values.
      }
    );
    return () => {
      live = false;
    };
    // params is compared through key
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [datasource, resource, key]);
  return options;
}

/** The dashboard's variables as options ($name), so a filter can follow one. */
export function variableOptions(): Array<SelectableValue<string>> {
  return getTemplateSrv()
    .getVariables()
    .map((v) => ({ value: '$' + v.name, label: '$' + v.name, description: v.label || 'dashboard variable' }));
}

/** Options of fixed values. */
export function fixedOptions(values: readonly string[]): Array<SelectableValue<string>> {
  return values.map((v) => ({ value: v, label: v }));
}

/** Splits a saved filter ("a,b" or "$var") into its values. */
export function splitList(value?: string): string[] {
  return (value ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/** Options plus any selected value that is not one of them (typed, or a variable of another dashboard). */
function withSelected(options: Array<SelectableValue<string>>, selected: string[]): Array<SelectableValue<string>> {
  const missing = selected.filter((s) => !options.some((o) => o.value === s));
  return [...options, ...missing.map((m) => ({ value: m, label: m }))];
}

interface FieldProps {
  id: string;
  label: string;
  tooltip?: string;
  width?: number;
  labelWidth?: number;
}

interface ListFieldProps extends FieldProps {
  /** the saved value: values separated by commas */
  value?: string;
  options: Array<SelectableValue<string>>;
  /** what the backend does when nothing is chosen */
  placeholder: string;
  /** called with the values joined by commas, undefined when none is left */
  onChange: (value: string | undefined) => void;
}

/** A filter of several values: options from the backend, dashboard variables, or typed values. */
export function ListField({
  id,
  label,
  tooltip,
  width = 40,
  labelWidth = LABEL_WIDTH,
  value,
  options,
  placeholder,
  onChange,
}: ListFieldProps) {
  const selected = splitList(value);
  const all = withSelected([...options, ...variableOptions()], selected);
  return (
    <InlineField label={label} labelWidth={labelWidth} tooltip={tooltip} htmlFor={id}>
      <MultiSelect<string>
        inputId={id}
        width={width}
        options={all}
        value={selected}
        placeholder={placeholder}
        allowCustomValue
        isClearable
        onChange={(sel) => {
          const values = (sel ?? []).map((o) => o.value).filter((v): v is string => !!v);
          onChange(values.length ? values.join(',') : undefined);
        }}
      />
    </InlineField>
  );
}

interface SingleFieldProps extends FieldProps {
  value?: string;
  options: Array<SelectableValue<string>>;
  /** shown selected when the saved value is empty: the backend's default */
  defaultValue?: string;
  placeholder?: string;
  allowCustomValue?: boolean;
  isClearable?: boolean;
  onChange: (value: string | undefined) => void;
}

/** One value; an empty saved value shows the backend's default as selected. */
export function SingleField({
  id,
  label,
  tooltip,
  width = 24,
  labelWidth = LABEL_WIDTH,
  value,
  options,
  defaultValue,
  placeholder,
  allowCustomValue,
  isClearable,
  onChange,
}: SingleFieldProps) {
  const shown = value || defaultValue;
  const all = withSelected(options, shown ? [shown] : []);
  return (
    <InlineField label={label} labelWidth={labelWidth} tooltip={tooltip} htmlFor={id}>
      <Select<string>
        inputId={id}
        width={width}
        options={all}
        value={shown ?? null}
        placeholder={placeholder}
        allowCustomValue={allowCustomValue}
        isClearable={isClearable}
        onChange={(o) => onChange(o?.value || undefined)}
      />
    </InlineField>
  );
}

interface NumberFieldProps extends FieldProps {
  value?: number;
  placeholder: string;
  onChange: (value: number | undefined) => void;
  onBlur?: () => void;
}

/** A number typed by the user; empty means the backend's default (the placeholder). */
export function NumberField({
  id,
  label,
  tooltip,
  width = 12,
  labelWidth = LABEL_WIDTH,
  value,
  placeholder,
  onChange,
  onBlur,
}: NumberFieldProps) {
  return (
    <InlineField label={label} labelWidth={labelWidth} tooltip={tooltip} htmlFor={id}>
      <Input
        id={id}
        type="number"
        width={width}
        placeholder={placeholder}
        value={value === undefined || value === 0 ? '' : String(value)}
        onChange={(e) => {
          const v = e.currentTarget.value;
          onChange(v === '' ? undefined : Number(v));
        }}
        onBlur={onBlur}
      />
    </InlineField>
  );
}
