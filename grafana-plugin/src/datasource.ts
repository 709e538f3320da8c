import {
  AdHocVariableFilter,
  AnnotationEvent,
  AnnotationQuery,
  CoreApp,
  DataFrame,
  DataSourceInstanceSettings,
  MetricFindValue,
  ScopedVars,
} from '@grafana/data';
import { DataSourceWithBackend, getTemplateSrv } from '@grafana/runtime';
import { VariableFormatID } from '@grafana/schema';
import { Observable, of } from 'rxjs';

import { AnnotationsQueryEditor } from './components/AnnotationsQueryEditor';
import { FaceIDVariableSupport } from './variables';
import {
  BACKEND_DEFAULTS,
  FaceIDOptions,
  FaceIDQuery,
  FaceIDVariableQuery,
  FILTER_FIELDS,
  ResourceName,
  ResourceOption,
} from './types';

/**
 * Replaces the dashboard variables of a filter value. A multi-value or All
 * variable becomes its values separated by commas, the list form the backend
 * reads (Grafana's default would be {a,b}); a custom All value is kept as it
 * is, so "*" reaches the backend as "every value".
 */
export function interpolateFilter(value: string | undefined, scopedVars?: ScopedVars): string | undefined {
  if (value === undefined || value === '') {
    return value;
  }
  const replaced = getTemplateSrv().replace(value, scopedVars, VariableFormatID.CSV);
  return replaced
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '')
    .join(',');
}

/** Turns the frames of an annotations query into Grafana annotation events. */
export function toAnnotationEvents(frames: DataFrame[]): AnnotationEvent[] {
  const events: AnnotationEvent[] = [];
  for (const frame of frames) {
    const field = (name: string) => frame.fields.find((f) => f.name === name);
    const time = field('time');
    if (!time) {
      continue;
    }
    const title = field('title');
    const text = field('text');
    const tags = field('tags');
    for (let i = 0; i < frame.length; i++) {
      const t = time.values[i];
      const tagText: string = tags?.values[i] ?? '';
      events.push({
        time: typeof t === 'number' ? t : new Date(t).valueOf(),
        title: title?.values[i],
        text: text?.values[i],
        tags: tagText === '' ? [] : tagText.split(','),
      });
    }
  }
  return events;
}

/** The FaceID exporter as a Grafana datasource; every query runs in the backend. */
export class FaceIDDataSource extends DataSourceWithBackend<FaceIDQuery, FaceIDOptions> {
  private resources = new Map<string, Promise<ResourceOption[]>>();

  constructor(instanceSettings: DataSourceInstanceSettings<FaceIDOptions>) {
    super(instanceSettings);
    this.variables = new FaceIDVariableSupport(this);
  }

  getDefaultQuery(_: CoreApp): Partial<FaceIDQuery> {
    return { queryType: 'events', kind: BACKEND_DEFAULTS.eventsKind };
  }

  filterQuery(query: FaceIDQuery): boolean {
    return !query.hide && !!query.queryType;
  }

  /** Replaces variables in every filter field and the search text. */
  applyTemplateVariables(query: FaceIDQuery, scopedVars: ScopedVars, _filters?: AdHocVariableFilter[]): FaceIDQuery {
    const out: FaceIDQuery = { ...query };
    for (const key of FILTER_FIELDS) {
      const v = out[key];
      if (typeof v === 'string' && v !== '') {
        out[key] = interpolateFilter(v, scopedVars);
      }
    }
    if (out.search) {
      out.search = getTemplateSrv().replace(out.search, scopedVars);
    }
    return out;
  }

  /** Explore shows the queries of a dashboard panel with their variables replaced. */
  interpolateVariablesInQueries(
    queries: FaceIDQuery[],
    scopedVars: ScopedVars,
    filters?: AdHocVariableFilter[]
  ): FaceIDQuery[] {
    return queries.map((q) => ({ ...this.applyTemplateVariables(q, scopedVars, filters), datasource: this.getRef() }));
  }

  /** Dropdown options from the backend's resources, fetched once per instance and parameters. */
  fetchOptions(resource: ResourceName, params?: Record<string, string>): Promise<ResourceOption[]> {
    const key = resource + JSON.stringify(params ?? {});
    let p = this.resources.get(key);
    if (!p) {
      p = this.getResource<ResourceOption[]>(resource, params).then((o) => (Array.isArray(o) ? o : []));
      p.catch(() => this.resources.delete(key));
      this.resources.set(key, p);
    }
    return p;
  }

  /**
   * The values of a query variable: channels, families, codes (text: the
   * code's meaning), categories, billable values or event kinds.
   */
  async metricFindQuery(
    query: FaceIDVariableQuery | string,
    options?: { scopedVars?: ScopedVars }
  ): Promise<MetricFindValue[]> {
    const q: FaceIDVariableQuery =
      typeof query === 'string' ? { refId: 'variable', type: query as FaceIDVariableQuery['type'] } : query;
    const params: Record<string, string> = {};
    if (q.type === 'codes') {
      const channel = interpolateFilter(q.channel, options?.scopedVars);
      const family = interpolateFilter(q.family, options?.scopedVars);
      if (channel) {
        params.channel = channel;
      }
      if (family) {
        params.family = family;
      }
    }
    const opts = await this.fetchOptions(q.type, Object.keys(params).length ? params : undefined);
    return opts.map((o) => {
      if (q.type === 'codes') {
        const meaning = o.label.startsWith(o.value + ' ') ? o.label.slice(o.value.length + 1) : o.label;
        return { text: meaning || o.value, value: o.value };
      }
      return { text: o.label || o.value, value: o.value };
    });
  }

  annotations = {
    QueryEditor: AnnotationsQueryEditor,
    getDefaultQuery: (): Partial<FaceIDQuery> => ({ queryType: 'annotations' }),
    /** Annotations saved without a target (or by hand) run as an annotations query of every kind. */
    prepareAnnotation: (json: any): AnnotationQuery<FaceIDQuery> => {
      const target: FaceIDQuery = { refId: 'Anno', ...(json?.target ?? {}), queryType: 'annotations' };
      return { ...json, target };
    },
    prepareQuery: (anno: AnnotationQuery<FaceIDQuery>): FaceIDQuery | undefined => {
      if (!anno.target) {
        return undefined;
      }
      return { ...anno.target, refId: anno.target.refId || 'Anno', queryType: 'annotations' };
    },
    processEvents: (_: AnnotationQuery<FaceIDQuery>, frames: DataFrame[]): Observable<AnnotationEvent[] | undefined> =>
      of(toAnnotationEvents(frames)),
  };
}
