import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import React, { useState } from 'react';

import { newDataSource } from '../testing/grafana';
import { choose, fieldOf, openMenu, optionLabels } from '../testing/ui';
import { FaceIDQuery } from '../types';
import { AnnotationsQueryEditor } from './AnnotationsQueryEditor';

async function renderEditor(initial: FaceIDQuery) {
  const { ds } = newDataSource([{ name: 'channel', value: 'app_sdk' }]);
  const saved: FaceIDQuery[] = [];
  function Editor() {
    const [query, setQuery] = useState(initial);
    return (
      <AnnotationsQueryEditor
        query={query}
        datasource={ds}
        onChange={(q) => {
          saved.push(q);
          setQuery(q);
        }}
        onRunQuery={() => {}}
      />
    );
  }
  render(<Editor />);
  await act(async () => {}); // the backend's options arrive
  return { user: userEvent.setup({ delay: null }), last: () => saved[saved.length - 1] };
}

test("shows every kind, any channel and code, and the exporter's default limit", async () => {
  await renderEditor({ refId: 'Anno' });
  expect(within(fieldOf('Kind')).getByText('every kind (default)')).toBeInTheDocument();
  expect(within(fieldOf('Channel')).getByText('any channel')).toBeInTheDocument();
  expect(within(fieldOf('Code')).getByText('any code')).toBeInTheDocument();
  expect(screen.getByLabelText('Limit')).toHaveAttribute('placeholder', '100');
});

test('billable failures and unknown codes of a channel variable and one code', async () => {
  const { user, last } = await renderEditor({ refId: 'Anno' });
  const kinds = await openMenu(user, 'Kind');
  expect(optionLabels(kinds)).toEqual(['billable_failure', 'high_risk', 'unknown_code', '$channel']); // and the dashboard's variables
  await user.click(within(kinds).getByText('billable_failure', { selector: 'span' }));
  await choose(user, 'Kind', 'unknown_code');
  await choose(user, 'Channel', '$channel');
  await user.type(screen.getByLabelText('Limit'), '500');
  expect(last()).toEqual({
    refId: 'Anno',
    queryType: 'annotations',
    kind: 'billable_failure,unknown_code',
    channel: '$channel',
    limit: 500,
  });
});

test('codes of the chosen channel, with their meaning', async () => {
  const { user, last } = await renderEditor({ refId: 'Anno', queryType: 'annotations', channel: 'eid' });
  const menu = await openMenu(user, 'Code');
  await waitFor(() =>
    expect(optionLabels(menu)).toEqual([
      '0 成功',
      '2006 姓名和身份证号不一致，请核实后重试',
      '2007 库中无此用户照片，请到户籍所在地进行核实',
      '2016 比对相似度未达到通过标准',
      '$channel',
    ])
  );
  await user.click(within(menu).getByText('2006 姓名和身份证号不一致，请核实后重试'));
  expect(last()).toEqual({ refId: 'Anno', queryType: 'annotations', channel: 'eid', code: '2006' });
});
