import { DataSourceJsonData } from '@grafana/data';
import { DataQuery } from '@grafana/schema';

/** Query types the backend (pkg/plugin/query.go) answers. */
export type QueryType = 'catalog' | 'events' | 'summary' | 'live' | 'annotations' | 'ledger' | 'forecast';

/**
 * The query model the editors save and the backend reads. Filter fields
 * hold one value, several separated by commas, or dashboard variables; the
 * datasource replaces the variables before a query leaves the browser.
 */
export interface FaceIDQuery extends DataQuery {
  queryType?: QueryType;
  /** catalog, events, summary, live, annotations, ledger, forecast */
  channel?: string;
  /** catalog */
  family?: string;
  /** catalog */
  category?: string;
  /** catalog, summary: true, false, unknown */
  billable?: string;
  /** summary: success, failure */
  outcome?: string;
  /** catalog, events, annotations: return codes (unknown codes match their raw code) */
  code?: string;
  /** catalog: substring of the code or its meaning */
  search?: string;
  /** events, annotations: kinds of events or all; live: one kind or all */
  kind?: string;
  /** events, annotations: how many of each kind (0 = the exporter's default) */
  limit?: number;
  /** events: keep events outside the dashboard's time range */
  ignoreTimeRange?: boolean;
  /** summary, ledger, forecast */
  format?: 'table' | 'timeseries';
  /** summary: dimensions kept */
  groupBy?: string[];
  /** summary */
  value?: 'count' | 'ratio';
  /** forecast: today and the next days, or the whole month */
  forecastOf?: 'daily' | 'month_end';
  /** forecast: billed verifications or their cost */
  measure?: 'billed' | 'cost';
  /** forecast, daily: how many days, today first (0 = 35) */
  days?: number;
}

/** The fields of a query that filter and so take variables and lists. */
export const FILTER_FIELDS = ['channel', 'family', 'category', 'billable', 'outcome', 'code', 'kind'] as const;
export type FilterField = (typeof FILTER_FIELDS)[number];

/** What the backend does when a field is left empty (ParseQuery's defaults). */
export const BACKEND_DEFAULTS = {
  eventsKind: 'billable_failure',
  liveKind: 'billable_failure',
  annotationsKind: 'all',
  limit: 100,
  format: 'table',
  value: 'count',
  groupBy: ['channel', 'outcome', 'billable'],
  forecastOf: 'daily',
  measure: 'billed',
  days: 35,
} as const;

/** The custom All value the backend reads as "every value". */
export const ANY_VALUE = '*';

export const EVENT_KINDS = ['billable_failure', 'high_risk', 'unknown_code'] as const;
export const STREAM_KINDS = ['all', ...EVENT_KINDS] as const;
export const BILLABLE_VALUES = ['true', 'false', 'unknown'] as const;
export const OUTCOMES = ['success', 'failure'] as const;
export const SUMMARY_DIMENSIONS = ['channel', 'outcome', 'billable'] as const;

/** Resources the backend serves (pkg/plugin/resources.go). */
export type ResourceName = 'channels' | 'families' | 'categories' | 'codes' | 'kinds' | 'billable';

/** One entry of a resource: what the editors show in a dropdown. */
export interface ResourceOption {
  value: string;
  label: string;
  description?: string;
}

/** What a query variable lists. */
export type VariableQueryType = 'channels' | 'families' | 'codes' | 'categories' | 'billable' | 'kinds';

/** The model the variable editor saves. */
export interface FaceIDVariableQuery extends DataQuery {
  type: VariableQueryType;
  /** codes: of these channels' families */
  channel?: string;
  /** codes: of these families */
  family?: string;
}

export type AuthType = 'none' | 'basic' | 'bearer';

/** jsonData of the datasource settings (pkg/plugin/settings.go). */
export interface FaceIDOptions extends DataSourceJsonData {
  authType?: AuthType;
  /** seconds, default 30 */
  timeout?: number;
  tlsSkipVerify?: boolean;
  tlsAuth?: boolean;
  tlsAuthWithCACert?: boolean;
  serverName?: string;
}

/** secureJsonData of the datasource settings; never sent back to the browser. */
export interface FaceIDSecureJsonData {
  basicAuthPassword?: string;
  bearerToken?: string;
  tlsCACert?: string;
  tlsClientCert?: string;
  tlsClientKey?: string;
}

/** The backend's default timeout in seconds. */
export const DEFAULT_TIMEOUT = 30;
