import { QueryEditorProps, SelectableValue } from '@grafana/data';
import { InlineField, InlineFieldRow, InlineSwitch, Input, MultiSelect, RadioButtonGroup } from '@grafana/ui';
import React from 'react';

import type { FaceIDDataSource } from '../datasource';
import {
  BACKEND_DEFAULTS,
  BILLABLE_VALUES,
  EVENT_KINDS,
  FaceIDOptions,
  FaceIDQuery,
  OUTCOMES,
  QueryType,
  STREAM_KINDS,
  SUMMARY_DIMENSIONS,
} from '../types';
import {
  LABEL_WIDTH,
  ListField,
  NumberField,
  SingleField,
  fixedOptions,
  useResourceOptions,
  variableOptions,
} from './fields';

export type Props = QueryEditorProps<FaceIDDataSource, FaceIDQuery, FaceIDOptions>;

export const QUERY_TYPES: Array<SelectableValue<QueryType>> = [
  { value: 'catalog', label: 'Catalog', description: 'Return codes: meaning, category, billable, per channel' },
  { value: 'events', label: 'Events', description: 'Recent notable events the exporter keeps, newest first' },
  {
    value: 'summary',
    label: 'Summary',
    description: 'Counts per channel, outcome and billable since the exporter started (alerting)',
  },
  { value: 'ledger', label: 'Ledger', description: 'Exact billed verifications per Beijing day and channel' },
  {
    value: 'forecast',
    label: 'Forecast',
    description: 'Forecast billed verifications or cost from the ledger, with 80 % and 95 % intervals',
  },
  { value: 'live', label: 'Live', description: 'Classified events as they arrive (Grafana Live)' },
  { value: 'annotations', label: 'Annotations', description: 'Events as annotations: time, title, text, tags' },
];

const FORMATS = [
  { value: 'table', label: 'table', description: 'one row per group (alerting: one series per row)' },
  { value: 'timeseries', label: 'timeseries', description: 'wide: one labelled field per group' },
];

const FORECASTS_OF = [
  { value: 'daily', label: 'daily', description: 'today and the next days, per Beijing day' },
  { value: 'month_end', label: 'month_end', description: 'the whole current Beijing month, one row per channel' },
];

const MEASURES = [
  { value: 'billed', label: 'billed', description: 'billed verifications' },
  { value: 'cost', label: 'cost', description: 'billed verifications × unit price (priced channels)' },
];

const VALUES = [
  { value: 'count', label: 'count', description: 'verifications of the group' },
  { value: 'ratio', label: 'ratio', description: "the outcome's share of the group's verifications" },
];

/** The panel query editor: one row of fields per query type. */
export function QueryEditor(props: Props) {
  const { query, datasource, onChange, onRunQuery } = props;
  const queryType: QueryType = query.queryType ?? 'events';
  const id = (field: string) => `faceid-${query.refId}-${field}`;

  const channels = useResourceOptions(datasource, 'channels');
  const families = useResourceOptions(datasource, 'families');
  const categories = useResourceOptions(datasource, 'categories');
  const codes = useResourceOptions(
    datasource,
    'codes',
    query.channel && !query.channel.includes('$') ? { channel: query.channel } : undefined
  );

  const change = (patch: Partial<FaceIDQuery>, run = true) => {
    onChange({ ...query, ...patch });
    if (run) {
      onRunQuery();
    }
  };

  const channelField = (
    <ListField
      id={id('channel')}
      label="Channel"
      value={query.channel}
      options={channels}
      placeholder="any channel"
      onChange={(channel) => change({ channel })}
    />
  );
  const codeField = (
    <ListField
      id={id('code')}
      label="Code"
      tooltip="Return codes; an unknown code matches its raw code"
      value={query.code}
      options={codes}
      placeholder="any code"
      onChange={(code) => change({ code })}
    />
  );
  const billableField = (
    <ListField
      id={id('billable')}
      label="Billable"
      width={28}
      value={query.billable}
      options={fixedOptions(BILLABLE_VALUES)}
      placeholder="any"
      onChange={(billable) => change({ billable })}
    />
  );
  const limitField = (
    <NumberField
      id={id('limit')}
      label="Limit"
      tooltip="Events of each kind to fetch, at most the exporter's ring size (default 1000, unknown codes 200); empty: the exporter's default, 100"
      value={query.limit}
      placeholder={String(BACKEND_DEFAULTS.limit)}
      onChange={(limit) => change({ limit }, false)}
      onBlur={onRunQuery}
    />
  );
  const formatField = (
    <SingleField
      id={id('format')}
      label="Format"
      width={16}
      value={query.format}
      defaultValue={BACKEND_DEFAULTS.format}
      options={FORMATS}
      onChange={(format) => change({ format: format as FaceIDQuery['format'] })}
    />
  );

  let fields: React.ReactNode;
  switch (queryType) {
    case 'catalog':
      fields = (
        <>
          <ListField
            id={id('family')}
            label="Family"
            value={query.family}
            options={families}
            placeholder="any family"
            onChange={(family) => change({ family })}
          />
          {channelField}
          <ListField
            id={id('category')}
            label="Category"
            value={query.category}
            options={categories}
            placeholder="any category"
            onChange={(category) => change({ category })}
          />
          {codeField}
          {billableField}
          <InlineField
            label="Search"
            labelWidth={LABEL_WIDTH}
            htmlFor={id('search')}
            tooltip="Substring of the code or its meaning"
          >
            <Input
              id={id('search')}
              width={24}
              placeholder="code or meaning"
              value={query.search ?? ''}
              onChange={(e) => change({ search: e.currentTarget.value || undefined }, false)}
              onBlur={onRunQuery}
            />
          </InlineField>
        </>
      );
      break;
    case 'events':
    case 'annotations':
      fields = (
        <>
          <ListField
            id={id('kind')}
            label="Kind"
            value={query.kind}
            options={fixedOptions(['all', ...EVENT_KINDS])}
            placeholder={queryType === 'events' ? `${BACKEND_DEFAULTS.eventsKind} (default)` : 'every kind (default)'}
            onChange={(kind) => change({ kind })}
          />
          {channelField}
          {codeField}
          {limitField}
          {queryType === 'events' && (
            <InlineField
              label="All times"
              labelWidth={LABEL_WIDTH}
              htmlFor={id('ignoreTimeRange')}
              tooltip="Keep events outside the dashboard time range"
            >
              <InlineSwitch
                id={id('ignoreTimeRange')}
                value={!!query.ignoreTimeRange}
                onChange={(e) => change({ ignoreTimeRange: e.currentTarget.checked })}
              />
            </InlineField>
          )}
        </>
      );
      break;
    case 'summary':
      fields = (
        <>
          {formatField}
          <SingleField
            id={id('value')}
            label="Value"
            width={16}
            value={query.value}
            defaultValue={BACKEND_DEFAULTS.value}
            options={VALUES}
            onChange={(value) => change({ value: value as FaceIDQuery['value'] })}
          />
          <InlineField label="Group by" labelWidth={LABEL_WIDTH} htmlFor={id('groupBy')}>
            <MultiSelect<string>
              inputId={id('groupBy')}
              width={40}
              options={fixedOptions(SUMMARY_DIMENSIONS)}
              value={query.groupBy?.length ? query.groupBy : [...BACKEND_DEFAULTS.groupBy]}
              onChange={(sel) => {
                const groupBy = sel.map((o) => o.value).filter((v): v is string => !!v);
                change({ groupBy: groupBy.length ? groupBy : undefined });
              }}
            />
          </InlineField>
          {channelField}
          <ListField
            id={id('outcome')}
            label="Outcome"
            width={28}
            value={query.outcome}
            options={fixedOptions(OUTCOMES)}
            placeholder="any"
            onChange={(outcome) => change({ outcome })}
          />
          {billableField}
        </>
      );
      break;
    case 'ledger':
      fields = (
        <>
          {channelField}
          {formatField}
        </>
      );
      break;
    case 'forecast':
      fields = (
        <>
          <SingleField
            id={id('forecastOf')}
            label="Forecast of"
            width={16}
            value={query.forecastOf}
            defaultValue={BACKEND_DEFAULTS.forecastOf}
            options={FORECASTS_OF}
            onChange={(forecastOf) => change({ forecastOf: forecastOf as FaceIDQuery['forecastOf'] })}
          />
          <SingleField
            id={id('measure')}
            label="Measure"
            width={16}
            value={query.measure}
            defaultValue={BACKEND_DEFAULTS.measure}
            options={MEASURES}
            onChange={(measure) => change({ measure: measure as FaceIDQuery['measure'] })}
          />
          {channelField}
          <NumberField
            id={id('days')}
            label="Days"
            tooltip="Days of the daily forecast, today first (1 to 400)"
            value={query.days}
            placeholder={String(BACKEND_DEFAULTS.days)}
            onChange={(days) => change({ days }, false)}
            onBlur={onRunQuery}
          />
          {formatField}
        </>
      );
      break;
    case 'live':
      fields = (
        <>
          <SingleField
            id={id('kind')}
            label="Kind"
            value={query.kind}
            defaultValue={BACKEND_DEFAULTS.liveKind}
            options={[...fixedOptions(STREAM_KINDS), ...variableOptions()]}
            allowCustomValue
            onChange={(kind) => change({ kind })}
          />
          {channelField}
        </>
      );
      break;
  }

  return (
    <>
      <InlineFieldRow>
        <InlineField label="Query type" labelWidth={LABEL_WIDTH}>
          <RadioButtonGroup<QueryType>
            options={QUERY_TYPES}
            value={queryType}
            onChange={(v) => {
              const patch: Partial<FaceIDQuery> = { queryType: v };
              if (v === 'live' && query.kind?.includes(',')) {
                patch.kind = undefined; // a live query follows one kind
              }
              change(patch);
            }}
          />
        </InlineField>
      </InlineFieldRow>
      <InlineFieldRow>{fields}</InlineFieldRow>
    </>
  );
}
