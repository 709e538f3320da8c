import { AnnotationQuery, CoreApp, DataQueryRequest, dataFrameFromJSON, DataFrameJSON } from '@grafana/data';
import { lastValueFrom } from 'rxjs';

import { FaceIDDataSource, interpolateFilter, toAnnotationEvents } from './datasource';
import { newDataSource } from './testing/grafana';
import annotationFrame from './testdata/annotations_frame.json';
import { FaceIDQuery, FaceIDVariableQuery } from './types';
import { FaceIDVariableSupport } from './variables';

const channelVars = [
  { name: 'single', value: 'app_sdk' },
  { name: 'multi', value: ['app_sdk', 'wechat_h5'] },
  { name: 'all', value: '$__all', options: ['wechat_h5', 'eid', 'app_sdk'] },
  { name: 'allMulti', value: ['$__all'], options: ['wechat_h5', 'eid'] },
  { name: 'customAll', value: '$__all', options: ['wechat_h5', 'eid'], allValue: '*' },
  { name: 'customList', value: '$__all', options: ['wechat_h5', 'eid'], allValue: 'app_sdk,pc_h5' },
  { name: 'outcome', value: ['failure'] },
  { name: 'billable', value: ['true', 'unknown'] },
  { name: 'kind', value: ['high_risk', 'unknown_code'] },
  { name: 'code', value: ['2006', '66660004'] },
];

describe('interpolation', () => {
  beforeEach(() => newDataSource(channelVars));

  test.each([
    ['a single value', '$single', 'app_sdk'],
    ['a multi-value variable becomes a list, not {a,b}', '$multi', 'app_sdk,wechat_h5'],
    ['braces', '${multi}', 'app_sdk,wechat_h5'],
    ['All is every option', '$all', 'wechat_h5,eid,app_sdk'],
    ['All selected in a multi-value variable', '$allMulti', 'wechat_h5,eid'],
    ['a custom all value * is kept for the backend', '$customAll', '*'],
    ['a custom all value list', '$customList', 'app_sdk,pc_h5'],
    ['a variable beside fixed values', 'eid,$multi', 'eid,app_sdk,wechat_h5'],
    ['no variable', 'nfc_server', 'nfc_server'],
    ['an unknown variable is left for the backend to report', '$nope', '$nope'],
  ])('%s', (_, value, want) => {
    expect(interpolateFilter(value)).toBe(want);
  });

  test('scoped variables (repeated panels) win over the dashboard value', () => {
    expect(interpolateFilter('$multi', { multi: { text: 'eid', value: 'eid' } })).toBe('eid');
  });

  test('every filter field and the search text are interpolated, other fields kept', () => {
    const { ds } = newDataSource(channelVars);
    const q: FaceIDQuery = {
      refId: 'A',
      queryType: 'summary',
      channel: '$multi',
      family: '$single',
      category: '$all',
      billable: '$billable',
      outcome: '$outcome',
      code: '$code',
      kind: '$kind',
      search: '$single',
      limit: 5,
      groupBy: ['channel'],
      format: 'timeseries',
      value: 'ratio',
    };
    expect(ds.applyTemplateVariables(q, {})).toEqual({
      refId: 'A',
      queryType: 'summary',
      channel: 'app_sdk,wechat_h5',
      family: 'app_sdk',
      category: 'wechat_h5,eid,app_sdk',
      billable: 'true,unknown',
      outcome: 'failure',
      code: '2006,66660004',
      kind: 'high_risk,unknown_code',
      search: 'app_sdk',
      limit: 5,
      groupBy: ['channel'],
      format: 'timeseries',
      value: 'ratio',
    });
  });

  test('Explore receives the queries with variables replaced and the datasource set', () => {
    const { ds } = newDataSource(channelVars);
    const out = ds.interpolateVariablesInQueries(
      [
        { refId: 'A', queryType: 'events', channel: '$customAll', kind: '$kind' },
        { refId: 'B', queryType: 'ledger', channel: '$all' },
      ],
      {}
    );
    expect(out).toEqual([
      {
        refId: 'A',
        queryType: 'events',
        channel: '*',
        kind: 'high_risk,unknown_code',
        datasource: { type: 'faceid-verification-datasource', uid: 'faceid-events' },
      },
      {
        refId: 'B',
        queryType: 'ledger',
        channel: 'wechat_h5,eid,app_sdk',
        datasource: { type: 'faceid-verification-datasource', uid: 'faceid-events' },
      },
    ]);
  });
});

describe('datasource', () => {
  test('default query: billable failures, the backend default', () => {
    const { ds } = newDataSource();
    expect(ds.getDefaultQuery(CoreApp.PanelEditor)).toEqual({ queryType: 'events', kind: 'billable_failure' });
  });

  test('hidden queries and queries without a type do not run', () => {
    const { ds } = newDataSource();
    expect(ds.filterQuery({ refId: 'A', queryType: 'catalog' })).toBe(true);
    expect(ds.filterQuery({ refId: 'A', queryType: 'catalog', hide: true })).toBe(false);
    expect(ds.filterQuery({ refId: 'A' })).toBe(false);
  });

  test('resources are fetched once per datasource and parameters', async () => {
    const { ds, seen } = newDataSource();
    await ds.fetchOptions('channels');
    await ds.fetchOptions('channels');
    await ds.fetchOptions('codes', { channel: 'eid' });
    expect(seen.map((r) => [r.url, r.params])).toEqual([
      ['/api/datasources/uid/faceid-events/resources/channels', undefined],
      ['/api/datasources/uid/faceid-events/resources/codes', { channel: 'eid' }],
    ]);
  });
});

describe('query variables', () => {
  const variableQuery = async (ds: FaceIDDataSource, q: FaceIDVariableQuery) => {
    const support = ds.variables as FaceIDVariableSupport;
    const res = await lastValueFrom(
      support.query({ targets: [q], scopedVars: {} } as unknown as DataQueryRequest<FaceIDVariableQuery>)
    );
    const frame = res.data[0];
    const col = (name: string) => frame.fields.find((f: { name: string }) => f.name === name).values;
    return { text: col('text'), value: col('value') };
  };

  test("channels: the catalog's channels", async () => {
    const { ds } = newDataSource();
    const got = await variableQuery(ds, { refId: 'V', type: 'channels' });
    expect(got.value).toEqual([
      'wechat_h5',
      'wechat_miniprogram',
      'eid',
      'app_sdk',
      'standalone_h5',
      'pc_h5',
      'willingness',
      'nfc_server',
      'nfc_terminal',
    ]);
    expect(got.text).toEqual(got.value);
  });

  test('codes: the meaning is the text, the code the value', async () => {
    const { ds } = newDataSource();
    const got = await variableQuery(ds, { refId: 'V', type: 'codes', channel: 'app_sdk' });
    expect(got.value).toEqual(['0', '66660004', '66660010']);
    expect(got.text).toEqual(['认证通过', '无法确认为同一人', '姓名和身份证不一致，请确认']);
  });

  test('codes of the channels a multi-value variable selects', async () => {
    const { ds, seen } = newDataSource([{ name: 'channel', value: ['app_sdk', 'eid'] }]);
    const got = await variableQuery(ds, { refId: 'V', type: 'codes', channel: '$channel' });
    expect(seen[seen.length - 1].params).toEqual({ channel: 'app_sdk,eid' });
    expect(got.value).toEqual(['0', '2006', '2007', '2016', '0', '66660004', '66660010']);
  });

  test.each([
    ['families', ['wechat', 'sdk', 'willingness', 'nfc_server', 'nfc_terminal']],
    ['categories', ['compare', 'nfc_server', 'nfc_terminal', 'sdk', 'system', 'willingness']],
    ['billable', ['true', 'false', 'unknown']],
    ['kinds', ['all', 'billable_failure', 'high_risk', 'unknown_code']],
  ] as const)('%s', async (type, want) => {
    const { ds } = newDataSource();
    expect((await variableQuery(ds, { refId: 'V', type })).value).toEqual(want);
  });

  test('metricFindQuery takes the legacy string form too', async () => {
    const { ds } = newDataSource();
    expect(await ds.metricFindQuery('billable')).toEqual([
      { text: 'true', value: 'true' },
      { text: 'false', value: 'false' },
      { text: 'unknown', value: 'unknown' },
    ]);
  });
});

describe('annotations', () => {
  const frame = dataFrameFromJSON(annotationFrame as unknown as DataFrameJSON);

  test("the backend's annotations frame becomes one event per row with time, title, text and tags", () => {
    const events = toAnnotationEvents([frame]);
    expect(events).toHaveLength(5);
    expect(events[1]).toEqual({
      time: Date.parse('2026-11-26T02:15:30.123Z'),
      title: 'Billable failure, High risk on wechat_h5',
      text: '2006 姓名和身份证号不一致，请核实后重试 (compare, failure, billable true); risk high, device level 3, risk level 1, device tags 202, identity tags 02, platform android',
      tags: ['billable_failure', 'high_risk', 'wechat_h5', '2006'],
    });
    expect(events.map((e) => e.time)).toEqual(
      [
        '2026-11-26T02:15:31.500Z',
        '2026-11-26T02:15:30.123Z',
        '2026-11-26T02:14:00.000Z',
        '2026-11-26T02:12:00.000Z',
        '2026-11-26T02:10:00.000Z',
      ].map(Date.parse)
    );
    expect(events[3].text).toBe(
      'code 99999999 is not in the catalog (billable unknown); risk low, device level 0, risk level 0, platform other'
    );
  });

  test('processEvents maps the frames; prepareQuery runs the target as an annotations query', async () => {
    const { ds } = newDataSource();
    const anno = ds.annotations.prepareAnnotation({
      name: 'FaceID',
      enable: true,
      iconColor: 'red',
      target: { refId: 'X', kind: 'high_risk', channel: '$channel' },
    });
    expect(anno.target).toEqual({ refId: 'X', queryType: 'annotations', kind: 'high_risk', channel: '$channel' });
    expect(ds.annotations.prepareQuery(anno as AnnotationQuery<FaceIDQuery>)).toEqual({
      refId: 'X',
      queryType: 'annotations',
      kind: 'high_risk',
      channel: '$channel',
    });
    const events = await lastValueFrom(ds.annotations.processEvents(anno, [frame]));
    expect(events).toHaveLength(5);
  });

  test('an annotation saved without a target queries every kind', () => {
    const { ds } = newDataSource();
    const anno = ds.annotations.prepareAnnotation({ name: 'old', enable: true, iconColor: 'red' });
    expect(ds.annotations.prepareQuery(anno)).toEqual({ refId: 'Anno', queryType: 'annotations' });
    expect(ds.annotations.getDefaultQuery()).toEqual({ queryType: 'annotations' });
  });
});
