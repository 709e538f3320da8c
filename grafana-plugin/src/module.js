/*
 * FaceID verification datasource: the frontend Grafana loads for the
 * backend plugin gpx_faceid. Hand-written AMD, no build step: Grafana
 * provides @grafana/data, @grafana/runtime, @grafana/ui and react at run
 * time. The queries run in the backend; this file only holds the datasource
 * class, the config editor and the query editor.
 */
define(['@grafana/data', '@grafana/runtime', '@grafana/ui', 'react'], function (grafanaData, grafanaRuntime, grafanaUi, React) {
  'use strict';

  var h = React.createElement;
  var InlineField = grafanaUi.InlineField;
  var InlineFieldRow = grafanaUi.InlineFieldRow;
  var InlineSwitch = grafanaUi.InlineSwitch;
  var Input = grafanaUi.Input;
  var SecretInput = grafanaUi.SecretInput;
  var SecretTextArea = grafanaUi.SecretTextArea;
  var Select = grafanaUi.Select;
  var MultiSelect = grafanaUi.MultiSelect;
  var RadioButtonGroup = grafanaUi.RadioButtonGroup;
  var FieldSet = grafanaUi.FieldSet;

  var QUERY_TYPES = [
    { value: 'catalog', label: 'Catalog', description: 'Return codes: meaning, category, billable, per channel' },
    { value: 'events', label: 'Events', description: 'Recent notable events the exporter keeps, newest first' },
    { value: 'summary', label: 'Summary', description: 'Counts per channel, outcome and billable since the exporter started (alerting)' },
    { value: 'live', label: 'Live', description: 'Classified events as they arrive (Grafana Live)' },
  ];
  var EVENT_KINDS = ['billable_failure', 'high_risk', 'unknown_code'];
  var STREAM_KINDS = ['all'].concat(EVENT_KINDS);
  var BILLABLE = ['true', 'false', 'unknown'];
  var OUTCOMES = ['success', 'failure'];
  var DIMENSIONS = ['channel', 'outcome', 'billable'];
  var AUTH_TYPES = [
    { value: 'none', label: 'No auth' },
    { value: 'basic', label: 'Basic auth' },
    { value: 'bearer', label: 'Bearer token' },
  ];

  function opts(values) {
    return values.map(function (v) {
      return { value: v, label: v };
    });
  }
  function withAny(options) {
    return [{ value: '', label: 'any' }].concat(options);
  }
  function assign() {
    var out = {};
    for (var i = 0; i < arguments.length; i++) {
      var src = arguments[i] || {};
      for (var k in src) {
        if (Object.prototype.hasOwnProperty.call(src, k)) {
          out[k] = src[k];
        }
      }
    }
    return out;
  }
  function inputValue(e) {
    return e && e.currentTarget ? e.currentTarget.value : e;
  }

  /* ---------------------------------------------------------------- datasource */

  class FaceIDDataSource extends grafanaRuntime.DataSourceWithBackend {
    constructor(instanceSettings) {
      super(instanceSettings);
    }

    getDefaultQuery() {
      return { queryType: 'events', kind: 'billable_failure', limit: 100 };
    }

    filterQuery(query) {
      return !query.hide && !!query.queryType;
    }

    applyTemplateVariables(query, scopedVars) {
      var srv = grafanaRuntime.getTemplateSrv();
      var out = assign(query);
      ['channel', 'family', 'category', 'search', 'kind'].forEach(function (k) {
        if (typeof out[k] === 'string' && out[k] !== '') {
          out[k] = srv.replace(out[k], scopedVars);
        }
      });
      return out;
    }

    /* Dropdown options from the backend's CallResource (channels, families, categories, kinds, codes). */
    fetchOptions(resource, params) {
      return this.getResource(resource, params);
    }
  }

  /* ---------------------------------------------------------------- config editor */

  function ConfigEditor(props) {
    var options = props.options;
    var jsonData = options.jsonData || {};
    var secure = options.secureJsonFields || {};
    var secureData = options.secureJsonData || {};
    var authType = jsonData.authType || (options.basicAuth ? 'basic' : secure.bearerToken ? 'bearer' : 'none');

    function update(patch) {
      props.onOptionsChange(assign(options, patch));
    }
    function updateJSON(patch) {
      update({ jsonData: assign(jsonData, patch) });
    }
    function setSecret(key, value) {
      var data = assign(secureData);
      data[key] = value;
      update({ secureJsonData: data });
    }
    function resetSecret(key) {
      var fields = assign(secure);
      fields[key] = false;
      var data = assign(secureData);
      data[key] = '';
      update({ secureJsonFields: fields, secureJsonData: data });
    }
    function secretInput(key, label, placeholder) {
      return h(InlineField, { label: label, labelWidth: 24, key: key },
        h(SecretInput, {
          'aria-label': label,
          width: 40,
          placeholder: placeholder,
          isConfigured: !!secure[key],
          value: secureData[key] || '',
          onChange: function (e) { setSecret(key, inputValue(e)); },
          onReset: function () { resetSecret(key); },
        }));
    }
    function secretText(key, label, placeholder) {
      return h(InlineField, { label: label, labelWidth: 24, key: key },
        h(SecretTextArea, {
          'aria-label': label,
          cols: 60,
          rows: 6,
          placeholder: placeholder,
          isConfigured: !!secure[key],
          value: secureData[key] || '',
          onChange: function (e) { setSecret(key, inputValue(e)); },
          onReset: function () { resetSecret(key); },
        }));
    }

    var auth = [
      h(InlineField, { label: 'Authentication', labelWidth: 24, key: 'authType', tooltip: 'What the exporter\'s --web.config.file requires' },
        h(RadioButtonGroup, {
          'aria-label': 'Authentication',
          options: AUTH_TYPES,
          value: authType,
          onChange: function (v) {
            update({ basicAuth: v === 'basic', jsonData: assign(jsonData, { authType: v }) });
          },
        })),
    ];
    if (authType === 'basic') {
      auth.push(h(InlineField, { label: 'User', labelWidth: 24, key: 'basicAuthUser' },
        h(Input, {
          'aria-label': 'User',
          width: 40,
          value: options.basicAuthUser || '',
          onChange: function (e) { update({ basicAuthUser: inputValue(e) }); },
        })));
      auth.push(secretInput('basicAuthPassword', 'Password', 'password'));
    }
    if (authType === 'bearer') {
      auth.push(secretInput('bearerToken', 'Bearer token', 'token'));
    }

    var tls = [
      h(InlineField, { label: 'Skip TLS verify', labelWidth: 24, key: 'tlsSkipVerify', tooltip: 'Testing only: accept any certificate' },
        h(InlineSwitch, {
          'aria-label': 'Skip TLS verify',
          value: !!jsonData.tlsSkipVerify,
          onChange: function (e) { updateJSON({ tlsSkipVerify: e.currentTarget.checked }); },
        })),
      h(InlineField, { label: 'With CA cert', labelWidth: 24, key: 'tlsAuthWithCACert' },
        h(InlineSwitch, {
          'aria-label': 'With CA cert',
          value: !!jsonData.tlsAuthWithCACert,
          onChange: function (e) { updateJSON({ tlsAuthWithCACert: e.currentTarget.checked }); },
        })),
      h(InlineField, { label: 'TLS client auth', labelWidth: 24, key: 'tlsAuth' },
        h(InlineSwitch, {
          'aria-label': 'TLS client auth',
          value: !!jsonData.tlsAuth,
          onChange: function (e) { updateJSON({ tlsAuth: e.currentTarget.checked }); },
        })),
      h(InlineField, { label: 'TLS server name', labelWidth: 24, key: 'serverName', tooltip: 'Host name to verify the certificate against, if not the URL\'s' },
        h(Input, {
          'aria-label': 'TLS server name',
          width: 40,
          value: jsonData.serverName || '',
          onChange: function (e) { updateJSON({ serverName: inputValue(e) }); },
        })),
    ];
    if (jsonData.tlsAuthWithCACert) {
      tls.push(secretText('tlsCACert', 'CA certificate', '-----BEGIN CERTIFICATE-----'));
    }
    if (jsonData.tlsAuth) {
      tls.push(secretText('tlsClientCert', 'Client certificate', '-----BEGIN CERTIFICATE-----'));
      tls.push(secretText('tlsClientKey', 'Client key', '-----BEGIN PRIVATE KEY-----'));
    }

    return h('div', { className: 'gf-form-group' },
      h(FieldSet, { label: 'FaceID exporter' },
        h(InlineField, { label: 'URL', labelWidth: 24, required: true, tooltip: 'Base URL of the exporter as seen from the Grafana server, e.g. http://faceid-exporter:9479' },
          h(Input, {
            'aria-label': 'URL',
            width: 40,
            placeholder: 'http://faceid-exporter:9479',
            value: options.url || '',
            onChange: function (e) { update({ url: inputValue(e) }); },
          })),
        h(InlineField, { label: 'Timeout (s)', labelWidth: 24, tooltip: 'For catalog, events and summary requests; the live stream has none' },
          h(Input, {
            'aria-label': 'Timeout',
            type: 'number',
            width: 12,
            placeholder: '30',
            value: jsonData.timeout === undefined ? '' : String(jsonData.timeout),
            onChange: function (e) {
              var v = inputValue(e);
              updateJSON({ timeout: v === '' ? undefined : Number(v) });
            },
          }))),
      h(FieldSet, { label: 'Auth' }, auth),
      h(FieldSet, { label: 'TLS' }, tls));
  }

  /* ---------------------------------------------------------------- query editor */

  function useOptions(datasource, resource, params) {
    var state = React.useState([]);
    var key = resource + JSON.stringify(params || {});
    React.useEffect(function () {
      var live = true;
      if (datasource && datasource.fetchOptions) {
        Promise.resolve(datasource.fetchOptions(resource, params)).then(function (o) {
          if (live && Array.isArray(o)) {
            state[1](o);
          }
        }, function () { /* the health check explains connection problems */ });
      }
      return function () { live = false; };
    }, [datasource, key]);
    return state[0];
  }

  function QueryEditor(props) {
    var query = props.query;
    var qt = query.queryType || 'events';
    var channels = useOptions(props.datasource, 'channels');
    var families = useOptions(props.datasource, 'families');
    var categories = useOptions(props.datasource, 'categories');

    function change(patch, run) {
      props.onChange(assign(query, patch));
      if (run !== false && props.onRunQuery) {
        props.onRunQuery();
      }
    }
    function select(key, label, options, width) {
      return h(InlineField, { label: label, labelWidth: 14, key: key },
        h(Select, {
          'aria-label': label,
          width: width || 24,
          options: options,
          value: query[key] || '',
          allowCustomValue: true,
          onChange: function (o) { var p = {}; p[key] = o ? o.value : ''; change(p); },
        }));
    }
    function text(key, label, placeholder, width) {
      return h(InlineField, { label: label, labelWidth: 14, key: key },
        h(Input, {
          'aria-label': label,
          width: width || 24,
          placeholder: placeholder,
          value: query[key] === undefined ? '' : String(query[key]),
          onChange: function (e) { var p = {}; p[key] = inputValue(e); change(p, false); },
          onBlur: function () { props.onRunQuery && props.onRunQuery(); },
        }));
    }

    var fields = [];
    if (qt === 'catalog') {
      fields.push(select('family', 'Family', withAny(families)));
      fields.push(select('channel', 'Channel', withAny(channels)));
      fields.push(select('category', 'Category', withAny(categories)));
      fields.push(select('billable', 'Billable', withAny(opts(BILLABLE)), 14));
      fields.push(text('search', 'Search', 'code or meaning'));
    } else if (qt === 'events') {
      fields.push(select('kind', 'Kind', opts(EVENT_KINDS)));
      fields.push(select('channel', 'Channel', withAny(channels)));
      fields.push(h(InlineField, { label: 'Limit', labelWidth: 14, key: 'limit' },
        h(Input, {
          'aria-label': 'Limit',
          type: 'number',
          width: 10,
          placeholder: '100',
          value: query.limit ? String(query.limit) : '',
          onChange: function (e) { var v = inputValue(e); change({ limit: v === '' ? 0 : Number(v) }, false); },
          onBlur: function () { props.onRunQuery && props.onRunQuery(); },
        })));
      fields.push(h(InlineField, { label: 'All times', labelWidth: 14, key: 'ignoreTimeRange', tooltip: 'Keep events outside the dashboard time range' },
        h(InlineSwitch, {
          'aria-label': 'All times',
          value: !!query.ignoreTimeRange,
          onChange: function (e) { change({ ignoreTimeRange: e.currentTarget.checked }); },
        })));
    } else if (qt === 'summary') {
      fields.push(select('format', 'Format', opts(['table', 'timeseries']), 16));
      fields.push(select('value', 'Value', opts(['count', 'ratio']), 12));
      fields.push(h(InlineField, { label: 'Group by', labelWidth: 14, key: 'groupBy' },
        h(MultiSelect, {
          'aria-label': 'Group by',
          width: 40,
          options: opts(DIMENSIONS),
          value: query.groupBy && query.groupBy.length ? query.groupBy : DIMENSIONS,
          onChange: function (sel) { change({ groupBy: (sel || []).map(function (o) { return o.value; }) }); },
        })));
      fields.push(select('channel', 'Channel', withAny(channels)));
      fields.push(select('outcome', 'Outcome', withAny(opts(OUTCOMES)), 14));
      fields.push(select('billable', 'Billable', withAny(opts(BILLABLE)), 14));
    } else if (qt === 'live') {
      fields.push(select('kind', 'Kind', opts(STREAM_KINDS)));
      fields.push(select('channel', 'Channel', withAny(channels)));
    }

    return h('div', null,
      h(InlineFieldRow, null,
        h(InlineField, { label: 'Query type', labelWidth: 14 },
          h(RadioButtonGroup, {
            'aria-label': 'Query type',
            options: QUERY_TYPES,
            value: qt,
            onChange: function (v) {
              var patch = { queryType: v };
              if ((v === 'events' || v === 'live') && !query.kind) {
                patch.kind = v === 'live' ? 'all' : 'billable_failure';
              }
              if (v === 'events' && query.kind === 'all') {
                patch.kind = 'billable_failure';
              }
              change(patch);
            },
          }))),
      h(InlineFieldRow, null, fields));
  }

  var plugin = new grafanaData.DataSourcePlugin(FaceIDDataSource)
    .setConfigEditor(ConfigEditor)
    .setQueryEditor(QueryEditor);

  return {
    plugin: plugin,
    FaceIDDataSource: FaceIDDataSource,
    ConfigEditor: ConfigEditor,
    QueryEditor: QueryEditor,
  };
});
