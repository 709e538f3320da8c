import { AnnotationQuery, QueryEditorProps } from '@grafana/data';
import { InlineFieldRow } from '@grafana/ui';
import React from 'react';

import type { FaceIDDataSource } from '../datasource';
import { BACKEND_DEFAULTS, EVENT_KINDS, FaceIDOptions, FaceIDQuery } from '../types';
import { ListField, NumberField, fixedOptions, useResourceOptions } from './fields';

export type Props = QueryEditorProps<FaceIDDataSource, FaceIDQuery, FaceIDOptions> & {
  annotation?: AnnotationQuery<FaceIDQuery>;
  onAnnotationChange?: (annotation: AnnotationQuery<FaceIDQuery>) => void;
};

/**
 * The editor of an annotation query: which kinds of events (default every
 * kind), of which channels and codes, and how many of each kind.
 */
export function AnnotationsQueryEditor({ query, datasource, onChange }: Props) {
  const q: FaceIDQuery = { ...query, queryType: 'annotations' };
  const channels = useResourceOptions(datasource, 'channels');
  const codes = useResourceOptions(
    datasource,
    'codes',
    q.channel && !q.channel.includes('$') ? { channel: q.channel } : undefined
  );
  const change = (patch: Partial<FaceIDQuery>) => onChange({ ...q, ...patch });
  return (
    <InlineFieldRow>
      <ListField
        id="faceid-annotations-kind"
        label="Kind"
        value={q.kind}
        options={fixedOptions(EVENT_KINDS)}
        placeholder="every kind (default)"
        onChange={(kind) => change({ kind })}
      />
      <ListField
        id="faceid-annotations-channel"
        label="Channel"
        value={q.channel}
        options={channels}
        placeholder="any channel"
        onChange={(channel) => change({ channel })}
      />
      <ListField
        id="faceid-annotations-code"
        label="Code"
        tooltip="Return codes; an unknown code matches its raw code"
        value={q.code}
        options={codes}
        placeholder="any code"
        onChange={(code) => change({ code })}
      />
      <NumberField
        id="faceid-annotations-limit"
        label="Limit"
        tooltip="Events of each kind to fetch, at most the exporter's ring size (default 1000, unknown codes 200); empty: the exporter's default, 100"
        value={q.limit}
        placeholder={String(BACKEND_DEFAULTS.limit)}
        onChange={(limit) => change({ limit })}
      />
    </InlineFieldRow>
  );
}
