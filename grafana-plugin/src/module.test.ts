import * as ui from '@grafana/ui';
import fs from 'fs';
import path from 'path';

import { AnnotationsQueryEditor } from './components/AnnotationsQueryEditor';
import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { VariableQueryEditor } from './components/VariableQueryEditor';
import { FaceIDDataSource } from './datasource';
import { plugin } from './module';
import { instanceSettings, newDataSource } from './testing/grafana';
import { FaceIDVariableSupport } from './variables';

test('module exports the plugin with its datasource class and editors', () => {
  expect(plugin.DataSourceClass).toBe(FaceIDDataSource);
  expect(plugin.components.ConfigEditor).toBe(ConfigEditor);
  expect(plugin.components.QueryEditor).toBe(QueryEditor);
});

test('the datasource brings query variables and annotations with their editors', () => {
  newDataSource();
  const ds = new FaceIDDataSource(instanceSettings);
  expect(ds.variables).toBeInstanceOf(FaceIDVariableSupport);
  expect((ds.variables as FaceIDVariableSupport).editor).toBe(VariableQueryEditor);
  expect(ds.annotations.QueryEditor).toBe(AnnotationsQueryEditor);
});

/** Every name the plugin's sources import from @grafana/ui. */
function uiImports(): string[] {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        walk(p);
      } else if (/\.tsx?$/.test(e.name) && !/\.test\.tsx?$/.test(e.name)) {
        for (const m of fs.readFileSync(p, 'utf8').matchAll(/import\s*{([^}]*)}\s*from\s*'@grafana\/ui'/g)) {
          m[1]
            .split(',')
            .map((n) => n.trim().split(/\s+as\s+/)[0])
            .filter(Boolean)
            .forEach((n) => names.add(n));
        }
      }
    }
  };
  walk(__dirname);
  return [...names].sort();
}

test('every @grafana/ui component the plugin uses exists in the installed @grafana/ui', () => {
  const used = uiImports();
  expect(used).toEqual([
    'FieldSet',
    'InlineField',
    'InlineFieldRow',
    'InlineSwitch',
    'Input',
    'MultiSelect',
    'RadioButtonGroup',
    'SecretInput',
    'SecretTextArea',
    'Select',
  ]);
  const missing = used.filter((n) => !(n in ui) || (ui as Record<string, unknown>)[n] === undefined);
  expect(missing).toEqual([]);
});
