/*
 * What a test needs of a running Grafana besides the real @grafana/* packages:
 * dashboard variables with Grafana's replacement rules, and the HTTP API of
 * the plugin's backend answering with what the backend really answers
 * (src/testdata, recorded by the Go tests in pkg/plugin/frontend_test.go).
 */
import { DataSourceInstanceSettings, PluginType, ScopedVars, TypedVariableModel } from '@grafana/data';
import {
  BackendSrv,
  BackendSrvRequest,
  FetchResponse,
  TemplateSrv,
  setBackendSrv,
  setTemplateSrv,
} from '@grafana/runtime';
import { Observable, of, throwError } from 'rxjs';

import { FaceIDDataSource } from '../datasource';
import { FaceIDOptions } from '../types';
import resources from '../testdata/resources.json';

/** A dashboard variable as a test defines it. */
export interface TestVariable {
  name: string;
  /** selected value(s); "$__all" when All is selected */
  value: string | string[];
  /** every option, for All without a custom all value */
  options?: string[];
  /** the variable's custom all value */
  allValue?: string;
  label?: string;
}

const ALL = '$__all';
const VARIABLE = /\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\${(\w+)(?:\.([^:^}]+))?(?::([^}]+))?}/g;

/**
 * TemplateSrv with the replacement rules of Grafana's template service and
 * of the scenes interpolator dashboards use: a scoped variable wins; All
 * without a custom all value stands for every option; a custom all value is
 * written as it is, unformatted (except for the text, percentencode and
 * queryparam formats); a multi-value is formatted (csv: joined by commas;
 * the default glob format: {a,b}).
 */
export class TestTemplateSrv implements TemplateSrv {
  constructor(private vars: TestVariable[] = []) {}

  getVariables(): TypedVariableModel[] {
    return this.vars.map(
      (v) =>
        ({
          name: v.name,
          label: v.label,
          type: 'custom',
          multi: Array.isArray(v.value),
          includeAll: v.options !== undefined || v.allValue !== undefined,
          allValue: v.allValue,
          current: { value: v.value, text: v.value },
          options: (v.options ?? []).map((o) => ({ value: o, text: o, selected: false })),
        }) as unknown as TypedVariableModel
    );
  }

  containsTemplate(target?: string): boolean {
    return !!target && new RegExp(VARIABLE.source).test(target);
  }

  updateTimeRange(): void {}

  replace(target?: string, scopedVars?: ScopedVars, format?: string | Function): string {
    if (!target) {
      return target ?? '';
    }
    return target.replace(VARIABLE, (match, var1, var2, fmt2, var3, _path, fmt3) => {
      const name: string = var1 || var2 || var3;
      const fmt = fmt2 || fmt3 || format;
      const scoped = scopedVars?.[name];
      if (scoped) {
        return this.format(scoped.value, fmt, name);
      }
      const v = this.vars.find((x) => x.name === name);
      if (!v) {
        return match;
      }
      const selected = Array.isArray(v.value) ? v.value : [v.value];
      if (selected.includes(ALL)) {
        if (v.allValue !== undefined) {
          if (fmt === 'text' || fmt === 'percentencode' || fmt === 'queryparam') {
            return this.format(v.allValue, fmt, name);
          }
          return this.replace(v.allValue, scopedVars, format);
        }
        return this.format(v.options ?? [], fmt, name);
      }
      return this.format(v.value, fmt, name);
    });
  }

  private format(value: unknown, fmt: string | Function | undefined, name: string): string {
    if (typeof fmt === 'function') {
      return fmt(value, { name }, (v: unknown) => String(v));
    }
    const values = Array.isArray(value) ? value.map(String) : [String(value)];
    switch (fmt) {
      case 'csv':
        return values.join(',');
      case 'pipe':
        return values.join('|');
      case 'text':
      case 'raw':
        return values.join(' + ');
      default: // glob
        return values.length > 1 ? `{${values.join(',')}}` : (values[0] ?? '');
    }
  }
}

/** Installs a TemplateSrv with these dashboard variables. */
export function setVariables(vars: TestVariable[] = []): TestTemplateSrv {
  const srv = new TestTemplateSrv(vars);
  setTemplateSrv(srv);
  return srv;
}

/** A backend request as the test saw it. */
export interface SeenRequest {
  url: string;
  params?: Record<string, string>;
}

const recorded = resources as Record<string, unknown>;

/**
 * Serves the backend's resources (/api/datasources/uid/<uid>/resources/...)
 * from src/testdata/resources.json; other requests fail as Grafana would
 * with a 404. Returns the requests it saw.
 */
export function serveBackend(): SeenRequest[] {
  const seen: SeenRequest[] = [];
  const srv = {
    fetch<T>(req: BackendSrvRequest): Observable<FetchResponse<T>> {
      seen.push({ url: req.url, params: req.params });
      const m = /^\/api\/datasources\/uid\/[^/]+\/resources\/(.+)$/.exec(req.url);
      const query = req.params ? new URLSearchParams(req.params).toString().replace(/%2C/g, ',') : '';
      const key = m ? m[1] + (query ? '?' + query : '') : '';
      if (!(key in recorded)) {
        return throwError(() => ({ status: 404, data: { error: `no recorded answer for ${req.url}?${query}` } }));
      }
      return of({ data: recorded[key] as T, status: 200, ok: true } as FetchResponse<T>);
    },
  };
  setBackendSrv(srv as unknown as BackendSrv);
  return seen;
}

/** Instance settings of a provisioned FaceID datasource. */
export const instanceSettings: DataSourceInstanceSettings<FaceIDOptions> = {
  id: 7,
  uid: 'faceid-events',
  type: 'faceid-verification-datasource',
  name: 'FaceID events',
  access: 'proxy',
  readOnly: false,
  jsonData: { authType: 'none', timeout: 30 },
  meta: {
    id: 'faceid-verification-datasource',
    name: 'FaceID verification',
    type: PluginType.datasource,
    module: 'public/plugins/faceid-verification-datasource/module.js',
    baseUrl: 'public/plugins/faceid-verification-datasource',
    info: {
      author: { name: 'faceid-observability' },
      description: '',
      links: [],
      logos: { small: '', large: '' },
      screenshots: [],
      updated: '',
      version: '',
    },
    backend: true,
    annotations: true,
  },
};

/** A datasource whose backend answers from the recordings, and no dashboard variables unless given. */
export function newDataSource(vars: TestVariable[] = []): {
  ds: FaceIDDataSource;
  seen: SeenRequest[];
  templateSrv: TestTemplateSrv;
} {
  const seen = serveBackend();
  const templateSrv = setVariables(vars);
  return { ds: new FaceIDDataSource(instanceSettings), seen, templateSrv };
}
