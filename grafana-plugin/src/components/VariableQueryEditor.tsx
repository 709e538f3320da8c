import { QueryEditorProps, SelectableValue } from '@grafana/data';
import { InlineFieldRow } from '@grafana/ui';
import React from 'react';

import type { FaceIDDataSource } from '../datasource';
import { FaceIDOptions, FaceIDQuery, FaceIDVariableQuery, VariableQueryType } from '../types';
import { ListField, SingleField, useResourceOptions } from './fields';

export type Props = QueryEditorProps<FaceIDDataSource, FaceIDQuery, FaceIDOptions, FaceIDVariableQuery>;

export const VARIABLE_TYPES: Array<SelectableValue<VariableQueryType>> = [
  { value: 'channels', label: 'Channels', description: 'Every channel of the catalog' },
  { value: 'families', label: 'Families', description: 'Channel families sharing one table of codes' },
  { value: 'codes', label: 'Codes', description: 'Return codes (text: their meaning), of some channels or families' },
  { value: 'categories', label: 'Categories', description: 'Categories of return codes' },
  { value: 'billable', label: 'Billable values', description: 'true, false, unknown' },
  { value: 'kinds', label: 'Event kinds', description: 'all, billable_failure, high_risk, unknown_code' },
];

/** The editor of a query variable: what to list, and for codes of which channels or families. */
export function VariableQueryEditor({ query, datasource, onChange }: Props) {
  const q: FaceIDVariableQuery = { ...query, refId: query.refId || 'variable', type: query.type || 'channels' };
  const channels = useResourceOptions(datasource, 'channels');
  const families = useResourceOptions(datasource, 'families');
  const change = (patch: Partial<FaceIDVariableQuery>) => {
    const next = { ...q, ...patch };
    onChange(next);
  };
  return (
    <InlineFieldRow>
      <SingleField
        id="faceid-variable-type"
        label="List"
        labelWidth={20}
        value={q.type}
        options={VARIABLE_TYPES}
        onChange={(type) =>
          change({ type: (type as VariableQueryType) ?? 'channels', channel: undefined, family: undefined })
        }
      />
      {q.type === 'codes' && (
        <>
          <ListField
            id="faceid-variable-channel"
            label="Of channels"
            value={q.channel}
            options={channels}
            placeholder="any channel"
            onChange={(channel) => change({ channel })}
          />
          <ListField
            id="faceid-variable-family"
            label="Of families"
            value={q.family}
            options={families}
            placeholder="any family"
            onChange={(family) => change({ family })}
          />
        </>
      )}
    </InlineFieldRow>
  );
}
