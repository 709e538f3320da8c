import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import React, { useState } from 'react';

import { newDataSource, TestVariable } from '../testing/grafana';
import { choose, fieldOf, openMenu, optionLabels } from '../testing/ui';
import { FaceIDVariableQuery } from '../types';
import { VariableQueryEditor } from './VariableQueryEditor';

async function renderEditor(initial: Partial<FaceIDVariableQuery>, vars: TestVariable[] = []) {
  const { ds } = newDataSource(vars);
  const saved: FaceIDVariableQuery[] = [];
  function Editor() {
    const [query, setQuery] = useState(initial as FaceIDVariableQuery);
    return (
      <VariableQueryEditor
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

test('a new variable lists channels, and offers everything the backend can list', async () => {
  const { user } = await renderEditor({ refId: 'variable' });
  expect(within(fieldOf('List')).getByText('Channels')).toBeInTheDocument();
  const menu = await openMenu(user, 'List');
  expect(optionLabels(menu)).toEqual(['Channels', 'Families', 'Codes', 'Categories', 'Billable values', 'Event kinds']);
  expect(screen.queryByLabelText('Of channels')).not.toBeInTheDocument();
});

test.each([
  ['Families', 'families'],
  ['Categories', 'categories'],
  ['Billable values', 'billable'],
  ['Event kinds', 'kinds'],
])('%s saves type %s', async (label, type) => {
  const { user, last } = await renderEditor({ refId: 'variable', type: 'channels' });
  await choose(user, 'List', label);
  expect(last()).toEqual({ refId: 'variable', type, channel: undefined, family: undefined });
});

test('codes: of the channels or families picked, a chained variable included', async () => {
  const { user, last } = await renderEditor({ refId: 'variable', type: 'channels' }, [
    { name: 'channel', value: ['app_sdk'] },
  ]);
  await choose(user, 'List', 'Codes');
  expect(screen.getByLabelText('Of channels')).toBeInTheDocument();
  expect(within(fieldOf('Of channels')).getByText('any channel')).toBeInTheDocument();
  expect(within(fieldOf('Of families')).getByText('any family')).toBeInTheDocument();
  const menu = await openMenu(user, 'Of channels');
  await waitFor(() => expect(optionLabels(menu)).toContain('$channel'));
  await user.click(within(menu).getByText('$channel', { selector: 'span' }));
  await choose(user, 'Of families', 'nfc_server');
  expect(last()).toEqual({ refId: 'variable', type: 'codes', channel: '$channel', family: 'nfc_server' });
});
