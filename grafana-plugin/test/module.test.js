// Loads the hand-written AMD module.js the way Grafana's loader does (a
// define() call with the shared modules Grafana provides), with minimal fakes
// of those modules, and checks what Grafana relies on: the exported plugin,
// the DataSourceWithBackend subclass, and the editors' fields and changes.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');

// A React stand-in: createElement records the tree; hooks keep initial state.
function fakeReact() {
  return {
    createElement(type, props, ...children) {
      return { type, props: props || {}, children: children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false) };
    },
    useState(init) {
      return [typeof init === 'function' ? init() : init, () => {}];
    },
    useEffect(fn) {
      fn();
    },
  };
}

// @grafana/ui: every component is a named function so the tree shows which one was used.
function fakeUI() {
  return new Proxy({}, {
    get(_, name) {
      const c = function () {};
      Object.defineProperty(c, 'name', { value: String(name) });
      return c;
    },
  });
}

class FakeDataSourceWithBackend {
  constructor(settings) {
    this.instanceSettings = settings;
    this.resources = [];
  }
  getResource(resource, params) {
    this.resources.push([resource, params]);
    return Promise.resolve([{ value: 'app_sdk', label: 'app_sdk' }]);
  }
}

class FakeDataSourcePlugin {
  constructor(ds) {
    this.DataSourceClass = ds;
    this.components = {};
  }
  setConfigEditor(c) {
    this.components.ConfigEditor = c;
    return this;
  }
  setQueryEditor(c) {
    this.components.QueryEditor = c;
    return this;
  }
}

function load() {
  const file = path.join(__dirname, '..', 'src', 'module.js');
  const code = fs.readFileSync(file, 'utf8');
  let deps;
  let result;
  const modules = {
    '@grafana/data': { DataSourcePlugin: FakeDataSourcePlugin },
    '@grafana/runtime': {
      DataSourceWithBackend: FakeDataSourceWithBackend,
      getTemplateSrv: () => ({ replace: (s) => s.replace('$channel', 'app_sdk') }),
    },
    '@grafana/ui': fakeUI(),
    react: fakeReact(),
  };
  const define = (d, factory) => {
    deps = d;
    result = factory(...d.map((name) => modules[name]));
  };
  define.amd = true;
  // Same realm as the test, so that arrays and objects compare structurally.
  vm.runInThisContext(`(function (define) {${code}\n})`, { filename: file })(define);
  return { deps, result };
}

// walk returns every element of a tree.
function walk(node, out = []) {
  if (node && typeof node === 'object' && 'type' in node) {
    out.push(node);
    node.children.forEach((c) => walk(c, out));
  }
  return out;
}

// control finds the element whose aria-label is label.
function control(tree, label) {
  const el = walk(tree).find((n) => n.props['aria-label'] === label);
  assert.ok(el, `no control labelled ${label}`);
  return el;
}

function labels(tree) {
  return walk(tree).filter((n) => n.props['aria-label']).map((n) => `${n.type.name}:${n.props['aria-label']}`);
}

test('AMD module asks Grafana for its shared modules and exports plugin', () => {
  const { deps, result } = load();
  assert.deepEqual(deps, ['@grafana/data', '@grafana/runtime', '@grafana/ui', 'react']);
  assert.ok(result.plugin instanceof FakeDataSourcePlugin);
  assert.equal(result.plugin.DataSourceClass, result.FaceIDDataSource);
  assert.equal(result.plugin.components.ConfigEditor, result.ConfigEditor);
  assert.equal(result.plugin.components.QueryEditor, result.QueryEditor);
});

test('datasource extends DataSourceWithBackend', () => {
  const { result } = load();
  const ds = new result.FaceIDDataSource({ uid: 'faceid', jsonData: {} });
  assert.ok(ds instanceof FakeDataSourceWithBackend);
  assert.equal(ds.instanceSettings.uid, 'faceid');
  assert.deepEqual(ds.getDefaultQuery(), { queryType: 'events', kind: 'billable_failure', limit: 100 });
  assert.equal(ds.filterQuery({ refId: 'A', queryType: 'summary' }), true);
  assert.equal(ds.filterQuery({ refId: 'A', queryType: 'summary', hide: true }), false);
  assert.equal(ds.filterQuery({ refId: 'A' }), false);
  const q = ds.applyTemplateVariables({ refId: 'A', queryType: 'events', channel: '$channel', limit: 5 }, {});
  assert.equal(q.channel, 'app_sdk');
  assert.equal(q.limit, 5);
});

test('config editor: URL, timeout, auth and TLS fields write the right settings', () => {
  const { result } = load();
  const changes = [];
  const base = { url: '', jsonData: {}, secureJsonFields: {}, secureJsonData: {} };
  const render = (options) => result.ConfigEditor({ options, onOptionsChange: (o) => changes.push(o) });

  let tree = render(base);
  assert.deepEqual(labels(tree), [
    'Input:URL', 'Input:Timeout', 'RadioButtonGroup:Authentication',
    'InlineSwitch:Skip TLS verify', 'InlineSwitch:With CA cert', 'InlineSwitch:TLS client auth', 'Input:TLS server name',
  ]);
  control(tree, 'URL').props.onChange({ currentTarget: { value: 'http://faceid-exporter:9479' } });
  assert.equal(changes.pop().url, 'http://faceid-exporter:9479');
  control(tree, 'Timeout').props.onChange({ currentTarget: { value: '5' } });
  assert.equal(changes.pop().jsonData.timeout, 5);

  control(tree, 'Authentication').props.onChange('basic');
  let o = changes.pop();
  assert.equal(o.basicAuth, true);
  assert.equal(o.jsonData.authType, 'basic');
  tree = render(o);
  assert.ok(labels(tree).includes('Input:User'));
  assert.ok(labels(tree).includes('SecretInput:Password'));
  control(tree, 'User').props.onChange({ currentTarget: { value: 'grafana' } });
  assert.equal(changes.pop().basicAuthUser, 'grafana');
  control(tree, 'Password').props.onChange({ currentTarget: { value: 's3cret' } });
  assert.equal(changes.pop().secureJsonData.basicAuthPassword, 's3cret');

  control(tree, 'Authentication').props.onChange('bearer');
  o = changes.pop();
  assert.equal(o.basicAuth, false);
  tree = render(o);
  control(tree, 'Bearer token').props.onChange({ currentTarget: { value: 'tok' } });
  assert.equal(changes.pop().secureJsonData.bearerToken, 'tok');

  // A configured secret shows as configured and can be reset.
  tree = render({ ...base, jsonData: { authType: 'bearer' }, secureJsonFields: { bearerToken: true } });
  const token = control(tree, 'Bearer token');
  assert.equal(token.props.isConfigured, true);
  token.props.onReset();
  o = changes.pop();
  assert.equal(o.secureJsonFields.bearerToken, false);
  assert.equal(o.secureJsonData.bearerToken, '');

  control(tree, 'Skip TLS verify').props.onChange({ currentTarget: { checked: true } });
  assert.equal(changes.pop().jsonData.tlsSkipVerify, true);
  control(tree, 'With CA cert').props.onChange({ currentTarget: { checked: true } });
  o = changes.pop();
  assert.equal(o.jsonData.tlsAuthWithCACert, true);
  tree = render({ ...o, jsonData: { ...o.jsonData, tlsAuth: true } });
  for (const l of ['CA certificate', 'Client certificate', 'Client key']) {
    assert.equal(control(tree, l).type.name, 'SecretTextArea');
  }
  control(tree, 'CA certificate').props.onChange({ currentTarget: { value: '-----BEGIN CERTIFICATE-----' } });
  assert.equal(changes.pop().secureJsonData.tlsCACert, '-----BEGIN CERTIFICATE-----');
});

test('query editor: fields per query type and changes', async () => {
  const { result } = load();
  const ds = new result.FaceIDDataSource({ uid: 'faceid' });
  const want = {
    catalog: ['Select:Family', 'Select:Channel', 'Select:Category', 'Select:Billable', 'Input:Search'],
    events: ['Select:Kind', 'Select:Channel', 'Input:Limit', 'InlineSwitch:All times'],
    summary: ['Select:Format', 'Select:Value', 'MultiSelect:Group by', 'Select:Channel', 'Select:Outcome', 'Select:Billable'],
    live: ['Select:Kind', 'Select:Channel'],
  };
  for (const [qt, fields] of Object.entries(want)) {
    const tree = result.QueryEditor({ query: { refId: 'A', queryType: qt }, datasource: ds, onChange() {}, onRunQuery() {} });
    assert.deepEqual(labels(tree), ['RadioButtonGroup:Query type', ...fields], qt);
    const types = control(tree, 'Query type').props.options.map((o) => o.value);
    assert.deepEqual(types, ['catalog', 'events', 'summary', 'live']);
  }
  await Promise.resolve();
  assert.deepEqual(ds.resources.map((r) => r[0]).slice(0, 3), ['channels', 'families', 'categories']);

  const changes = [];
  let runs = 0;
  const editor = (query) => result.QueryEditor({ query, datasource: ds, onChange: (q) => changes.push(q), onRunQuery: () => runs++ });
  let tree = editor({ refId: 'A', queryType: 'events', kind: 'high_risk' });
  control(tree, 'Kind').props.onChange({ value: 'unknown_code' });
  assert.deepEqual(changes.pop(), { refId: 'A', queryType: 'events', kind: 'unknown_code' });
  assert.equal(runs, 1);
  control(tree, 'Limit').props.onChange({ currentTarget: { value: '20' } });
  assert.equal(changes.pop().limit, 20);
  assert.equal(runs, 1, 'typing does not run the query');
  control(tree, 'Limit').props.onBlur();
  assert.equal(runs, 2);
  assert.deepEqual(control(tree, 'Kind').props.options.map((o) => o.value), ['billable_failure', 'high_risk', 'unknown_code']);

  control(tree, 'Query type').props.onChange('live');
  assert.equal(changes.pop().queryType, 'live');
  tree = editor({ refId: 'A', queryType: 'live', kind: 'all' });
  assert.deepEqual(control(tree, 'Kind').props.options.map((o) => o.value), ['all', 'billable_failure', 'high_risk', 'unknown_code']);
  control(tree, 'Query type').props.onChange('events');
  assert.equal(changes.pop().kind, 'billable_failure', 'events has no kind all');

  tree = editor({ refId: 'A', queryType: 'summary' });
  assert.deepEqual(control(tree, 'Group by').props.value, ['channel', 'outcome', 'billable']);
  control(tree, 'Group by').props.onChange([{ value: 'channel' }]);
  assert.deepEqual(changes.pop().groupBy, ['channel']);
  control(tree, 'Outcome').props.onChange({ value: 'failure' });
  assert.equal(changes.pop().outcome, 'failure');
  control(tree, 'Billable').props.onChange(null);
  assert.equal(changes.pop().billable, '');
});
