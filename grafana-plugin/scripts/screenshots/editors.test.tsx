/*
 * Renders the editors with the real @grafana/ui, as the component tests do,
 * and writes each as a standalone HTML page (the CSS @grafana/ui injected
 * included) into $SCREENSHOTS_OUT. ./shoot.sh turns them into the PNGs of
 * the README with headless Chromium. Not part of npm run test.
 */
import { DataSourceSettings } from '@grafana/data';
import { act, render } from '@testing-library/react';
import fs from 'fs';
import path from 'path';
import React from 'react';

import { AnnotationsQueryEditor } from '../../src/components/AnnotationsQueryEditor';
import { ConfigEditor } from '../../src/components/ConfigEditor';
import { QueryEditor } from '../../src/components/QueryEditor';
import { VariableQueryEditor } from '../../src/components/VariableQueryEditor';
import { newDataSource } from '../../src/testing/grafana';
import { FaceIDOptions, FaceIDSecureJsonData } from '../../src/types';

const out = process.env.SCREENSHOTS_OUT ?? path.join(__dirname, 'out');

async function page(name: string, title: string, width: number, element: React.ReactElement) {
  const { container, unmount } = render(
    <div style={{ padding: 16, width }}>
      <h3 style={{ margin: '0 0 12px' }}>{title}</h3>
      {element}
    </div>
  );
  await act(async () => {});
  // Emotion writes rules with insertRule (not as text) in jsdom: read the sheets.
  const styles = Array.from(document.styleSheets)
    .flatMap((sheet) => Array.from(sheet.cssRules).map((r) => r.cssText))
    .join('\n');
  const html = `<!doctype html><html><head><meta charset="utf-8"><style>
body { margin: 0; background: #111217; color: #ccccdc; font-family: Inter, "Noto Sans CJK SC", Helvetica, Arial, sans-serif; font-size: 14px; }
/* what Grafana's global styles do for bare inputs; icons are blank in jsdom (react-inlinesvg is stubbed) */
input, textarea { background: transparent; color: inherit; font: inherit; }
svg { width: 16px; height: 16px; }
fieldset { border: 0; margin: 0 0 16px; padding: 0; }
legend { font-size: 18px; margin-bottom: 8px; }
${styles}</style></head><body>${container.innerHTML}</body></html>`;
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, `${name}.html`), html);
  unmount();
}

const vars = [{ name: 'channel', value: ['app_sdk', 'wechat_h5'] }];

test('render the editors', async () => {
  const { ds } = newDataSource(vars);
  const noop = () => {};
  const settings = {
    id: 1,
    uid: 'faceid-events',
    orgId: 1,
    name: 'FaceID events',
    type: 'faceid-verification-datasource',
    typeName: 'FaceID verification',
    typeLogoUrl: '',
    access: 'proxy',
    url: 'http://faceid-exporter:9479',
    user: '',
    database: '',
    basicAuth: true,
    basicAuthUser: 'grafana',
    isDefault: false,
    jsonData: { authType: 'basic', timeout: 30 },
    secureJsonFields: { basicAuthPassword: true },
    readOnly: false,
    withCredentials: false,
  } as DataSourceSettings<FaceIDOptions, FaceIDSecureJsonData>;
  await page('config-editor', 'Settings', 760, <ConfigEditor options={settings} onOptionsChange={noop} />);
  await page(
    'query-editor-events',
    'Query: events',
    1180,
    <QueryEditor
      datasource={ds}
      query={{ refId: 'A', queryType: 'events', kind: 'billable_failure,high_risk', channel: '$channel' }}
      onChange={noop}
      onRunQuery={noop}
    />
  );
  await page(
    'query-editor-summary',
    'Query: summary (defaults shown)',
    1180,
    <QueryEditor
      datasource={ds}
      query={{ refId: 'A', queryType: 'summary', outcome: 'failure', billable: 'true' }}
      onChange={noop}
      onRunQuery={noop}
    />
  );
  await page(
    'query-editor-ledger',
    'Query: ledger',
    1180,
    <QueryEditor
      datasource={ds}
      query={{ refId: 'A', queryType: 'ledger', channel: '$channel' }}
      onChange={noop}
      onRunQuery={noop}
    />
  );
  await page(
    'variable-editor',
    'Query variable: codes of $channel',
    1000,
    <VariableQueryEditor
      datasource={ds}
      query={{ refId: 'variable', type: 'codes', channel: '$channel' }}
      onChange={noop}
      onRunQuery={noop}
    />
  );
  await page(
    'annotations-editor',
    'Annotations: billable failures and unknown codes of $channel',
    1180,
    <AnnotationsQueryEditor
      datasource={ds}
      query={{ refId: 'Anno', queryType: 'annotations', kind: 'billable_failure,unknown_code', channel: '$channel' }}
      onChange={noop}
      onRunQuery={noop}
    />
  );
});
