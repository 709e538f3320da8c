import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import React, { useState } from 'react';

import type { FaceIDDataSource } from '../datasource';
import { newDataSource, TestVariable } from '../testing/grafana';
import { choose, fieldOf, openMenu, optionLabels, removeValue } from '../testing/ui';
import { FaceIDQuery } from '../types';
import { QueryEditor } from './QueryEditor';

async function renderEditor(initial: FaceIDQuery, vars: TestVariable[] = []) {
  const { ds } = newDataSource(vars);
  const saved: FaceIDQuery[] = [];
  let runs = 0;
  function Editor() {
    const [query, setQuery] = useState(initial);
    return (
      <QueryEditor
        query={query}
        datasource={ds as FaceIDDataSource}
        onChange={(q) => {
          saved.push(q);
          setQuery(q);
        }}
        onRunQuery={() => runs++}
      />
    );
  }
  render(<Editor />);
  await act(async () => {}); // the backend's options arrive
  return { user: userEvent.setup({ delay: null }), saved, last: () => saved[saved.length - 1], runs: () => runs };
}

/** The labels of the fields the editor shows, in order (the query type row first). */
function fieldLabels(): string[] {
  return Array.from(document.querySelectorAll('label'))
    .map((l) => (l.textContent ?? '').trim())
    .filter((l) => l !== '');
}

const typeLabels = ['Catalog', 'Events', 'Summary', 'Ledger', 'Forecast', 'Live', 'Annotations'];

describe('QueryEditor: what each query type shows', () => {
  test('every query type of the backend can be chosen', async () => {
    await renderEditor({ refId: 'A', queryType: 'catalog' });
    expect(screen.getAllByRole('radio').map((r) => r.closest('div')?.textContent?.trim())).toEqual(typeLabels);
    expect(screen.getByRole('radio', { name: 'Catalog' })).toBeChecked();
  });

  test('catalog: filters show "any …", not "Choose"', async () => {
    await renderEditor({ refId: 'A', queryType: 'catalog' });
    expect(fieldLabels()).toEqual([
      'Query type',
      ...typeLabels,
      'Family',
      'Channel',
      'Category',
      'Code',
      'Billable',
      'Search',
    ]);
    for (const [label, shown] of [
      ['Family', 'any family'],
      ['Channel', 'any channel'],
      ['Category', 'any category'],
      ['Code', 'any code'],
      ['Billable', 'any'],
    ]) {
      expect(within(fieldOf(label)).getByText(shown)).toBeInTheDocument();
    }
    expect(screen.getByLabelText('Search')).toHaveAttribute('placeholder', 'code or meaning');
    expect(screen.queryByText(/Choose/)).not.toBeInTheDocument();
  });

  test("events: the default kind and the exporter's default limit are shown", async () => {
    await renderEditor({ refId: 'A', queryType: 'events' });
    expect(fieldLabels()).toEqual(['Query type', ...typeLabels, 'Kind', 'Channel', 'Code', 'Limit', 'All times']);
    expect(within(fieldOf('Kind')).getByText('billable_failure (default)')).toBeInTheDocument();
    expect(screen.getByLabelText('Limit')).toHaveAttribute('placeholder', '100');
    expect(screen.getByLabelText('All times')).not.toBeChecked();
    expect(screen.queryByText(/Choose/)).not.toBeInTheDocument();
  });

  test('summary: format table, value count and all three dimensions are shown as the backend defaults', async () => {
    await renderEditor({ refId: 'A', queryType: 'summary' });
    expect(fieldLabels()).toEqual([
      'Query type',
      ...typeLabels,
      'Format',
      'Value',
      'Group by',
      'Channel',
      'Outcome',
      'Billable',
    ]);
    expect(within(fieldOf('Format')).getByText('table')).toBeInTheDocument();
    expect(within(fieldOf('Value')).getByText('count')).toBeInTheDocument();
    for (const dim of ['channel', 'outcome', 'billable']) {
      expect(within(fieldOf('Group by')).getByText(dim)).toBeInTheDocument();
    }
    expect(within(fieldOf('Outcome')).getByText('any')).toBeInTheDocument();
  });

  test('ledger: channel and format', async () => {
    await renderEditor({ refId: 'A', queryType: 'ledger' });
    expect(fieldLabels()).toEqual(['Query type', ...typeLabels, 'Channel', 'Format']);
    expect(within(fieldOf('Format')).getByText('table')).toBeInTheDocument();
  });

  test('forecast: what, measure, channel, days and format', async () => {
    await renderEditor({ refId: 'A', queryType: 'forecast' });
    expect(fieldLabels()).toEqual(['Query type', ...typeLabels, 'Forecast of', 'Measure', 'Channel', 'Days', 'Format']);
    expect(within(fieldOf('Forecast of')).getByText('daily')).toBeInTheDocument();
    expect(within(fieldOf('Measure')).getByText('billed')).toBeInTheDocument();
  });

  test('live: one kind (default billable_failure) and channels', async () => {
    await renderEditor({ refId: 'A', queryType: 'live' });
    expect(fieldLabels()).toEqual(['Query type', ...typeLabels, 'Kind', 'Channel']);
    expect(within(fieldOf('Kind')).getByText('billable_failure')).toBeInTheDocument();
    expect(within(fieldOf('Channel')).getByText('any channel')).toBeInTheDocument();
  });

  test('annotations: every kind by default', async () => {
    await renderEditor({ refId: 'A', queryType: 'annotations' });
    expect(fieldLabels()).toEqual(['Query type', ...typeLabels, 'Kind', 'Channel', 'Code', 'Limit']);
    expect(within(fieldOf('Kind')).getByText('every kind (default)')).toBeInTheDocument();
  });

  test('a query without a type is shown as events', async () => {
    await renderEditor({ refId: 'A' });
    expect(screen.getByRole('radio', { name: 'Events' })).toBeChecked();
  });
});

describe('QueryEditor: what the saved query becomes', () => {
  test("catalog filters save lists of the values picked, from the backend's options", async () => {
    const { user, last, runs } = await renderEditor({ refId: 'A', queryType: 'catalog' });
    const menu = await openMenu(user, 'Channel');
    await waitFor(() =>
      expect(optionLabels(menu)).toEqual([
        'wechat_h5',
        'wechat_miniprogram',
        'eid',
        'app_sdk',
        'standalone_h5',
        'pc_h5',
        'willingness',
        'nfc_server',
        'nfc_terminal',
      ])
    );
    await user.click(within(menu).getByText('app_sdk', { selector: 'span' }));
    expect(last()).toEqual({ refId: 'A', queryType: 'catalog', channel: 'app_sdk' });
    await choose(user, 'Channel', 'eid');
    expect(last()).toEqual({ refId: 'A', queryType: 'catalog', channel: 'app_sdk,eid' });
    expect(runs()).toBe(2);

    await choose(user, 'Billable', 'unknown');
    await choose(user, 'Family', 'sdk');
    await choose(user, 'Category', 'system');
    expect(last()).toEqual({
      refId: 'A',
      queryType: 'catalog',
      channel: 'app_sdk,eid',
      billable: 'unknown',
      family: 'sdk',
      category: 'system',
    });

    await user.type(screen.getByLabelText('Search'), '6666');
    expect(last().search).toBe('6666');
    expect(runs()).toBe(5); // typing does not run the query
    await user.tab();
    expect(runs()).toBe(6);
  });

  test('codes offered are those of the chosen channel', async () => {
    const { user, last } = await renderEditor({ refId: 'A', queryType: 'catalog', channel: 'app_sdk' });
    const menu = await openMenu(user, 'Code');
    await waitFor(() =>
      expect(optionLabels(menu)).toEqual([
        '0 认证通过',
        '66660004 无法确认为同一人',
        '66660010 姓名和身份证不一致，请确认',
      ])
    );
    await user.click(within(menu).getByText('66660004 无法确认为同一人'));
    expect(last()).toEqual({ refId: 'A', queryType: 'catalog', channel: 'app_sdk', code: '66660004' });
  });

  test('a dashboard variable can be picked as a filter value', async () => {
    const { user, last } = await renderEditor({ refId: 'A', queryType: 'events' }, [
      { name: 'channel', value: ['app_sdk'] },
    ]);
    await choose(user, 'Channel', '$channel');
    expect(last()).toEqual({ refId: 'A', queryType: 'events', channel: '$channel' });
    expect(within(fieldOf('Channel')).getByText('$channel')).toBeInTheDocument();
  });

  test('a saved value that is not an option is still shown', async () => {
    await renderEditor({ refId: 'A', queryType: 'events', channel: 'app_sdk,$other', kind: 'high_risk' });
    expect(within(fieldOf('Channel')).getByText('app_sdk')).toBeInTheDocument();
    expect(within(fieldOf('Channel')).getByText('$other')).toBeInTheDocument();
    expect(within(fieldOf('Kind')).getByText('high_risk')).toBeInTheDocument();
  });

  test('events: kinds, limit and all times', async () => {
    const { user, last, runs } = await renderEditor({ refId: 'A', queryType: 'events' });
    const menu = await openMenu(user, 'Kind');
    expect(optionLabels(menu)).toEqual(['all', 'billable_failure', 'high_risk', 'unknown_code']);
    await user.click(within(menu).getByText('high_risk', { selector: 'span' }));
    await choose(user, 'Kind', 'unknown_code');
    expect(last()).toEqual({ refId: 'A', queryType: 'events', kind: 'high_risk,unknown_code' });
    await user.type(screen.getByLabelText('Limit'), '20');
    expect(last().limit).toBe(20);
    await user.click(screen.getByLabelText('All times'));
    expect(last()).toEqual({
      refId: 'A',
      queryType: 'events',
      kind: 'high_risk,unknown_code',
      limit: 20,
      ignoreTimeRange: true,
    });
    expect(runs()).toBe(4); // two kinds, leaving the limit, the switch: typing the limit ran nothing
  });

  test('summary: format, value, group by, outcome', async () => {
    const { user, last } = await renderEditor({ refId: 'A', queryType: 'summary' });
    await choose(user, 'Format', 'timeseries');
    await choose(user, 'Value', 'ratio');
    await choose(user, 'Outcome', 'failure');
    await choose(user, 'Billable', 'true');
    await removeValue(user, 'Group by', 'outcome');
    await removeValue(user, 'Group by', 'billable');
    expect(last()).toEqual({
      refId: 'A',
      queryType: 'summary',
      format: 'timeseries',
      value: 'ratio',
      outcome: 'failure',
      billable: 'true',
      groupBy: ['channel'],
    });
  });

  test('ledger: channel and format', async () => {
    const { user, last } = await renderEditor({ refId: 'A', queryType: 'ledger' });
    await choose(user, 'Channel', 'wechat_h5');
    await choose(user, 'Format', 'timeseries');
    expect(last()).toEqual({ refId: 'A', queryType: 'ledger', channel: 'wechat_h5', format: 'timeseries' });
  });

  test('forecast: what, measure and channel', async () => {
    const { user, last } = await renderEditor({ refId: 'A', queryType: 'forecast' });
    await choose(user, 'Forecast of', 'month_end');
    await choose(user, 'Measure', 'cost');
    await choose(user, 'Channel', 'wechat_h5');
    expect(last()).toEqual({
      refId: 'A',
      queryType: 'forecast',
      forecastOf: 'month_end',
      measure: 'cost',
      channel: 'wechat_h5',
    });
  });

  test('live: one kind and channels', async () => {
    const { user, last } = await renderEditor({ refId: 'A', queryType: 'live' });
    const menu = await openMenu(user, 'Kind');
    expect(optionLabels(menu)).toEqual(['all', 'billable_failure', 'high_risk', 'unknown_code']);
    await user.click(within(menu).getByText('all', { selector: 'span' }));
    await choose(user, 'Channel', 'pc_h5');
    await choose(user, 'Channel', 'eid');
    expect(last()).toEqual({ refId: 'A', queryType: 'live', kind: 'all', channel: 'pc_h5,eid' });
  });

  test('switching to live drops a list of kinds a live query cannot follow', async () => {
    const { user, last } = await renderEditor({ refId: 'A', queryType: 'events', kind: 'high_risk,unknown_code' });
    await user.click(screen.getByRole('radio', { name: 'Live' }));
    expect(last()).toEqual({ refId: 'A', queryType: 'live', kind: undefined });
    await user.click(screen.getByRole('radio', { name: 'Annotations' }));
    expect(last().queryType).toBe('annotations');
  });

  test('clearing a filter removes it from the saved query', async () => {
    const { user, last } = await renderEditor({ refId: 'A', queryType: 'events', channel: 'eid' });
    await removeValue(user, 'Channel', 'eid');
    expect(last().channel).toBeUndefined();
    expect(JSON.parse(JSON.stringify(last()))).toEqual({ refId: 'A', queryType: 'events' });
  });
});
