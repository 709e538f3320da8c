import { DataSourceSettings } from '@grafana/data';
import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import React, { useState } from 'react';

import { FaceIDOptions, FaceIDSecureJsonData } from '../types';
import { ConfigEditor } from './ConfigEditor';

type Options = DataSourceSettings<FaceIDOptions, FaceIDSecureJsonData>;

const base: Options = {
  id: 1,
  uid: 'faceid',
  orgId: 1,
  name: 'FaceID events',
  type: 'faceid-verification-datasource',
  typeName: 'FaceID verification',
  typeLogoUrl: '',
  access: 'proxy',
  url: '',
  user: '',
  database: '',
  basicAuth: false,
  basicAuthUser: '',
  isDefault: false,
  jsonData: {},
  secureJsonFields: {},
  readOnly: false,
  withCredentials: false,
};

function renderConfig(initial: Partial<Options> = {}) {
  const saved: Options[] = [];
  function Editor() {
    const [options, setOptions] = useState<Options>({ ...base, ...initial });
    return (
      <ConfigEditor
        options={options}
        onOptionsChange={(o) => {
          saved.push(o);
          setOptions(o);
        }}
      />
    );
  }
  render(<Editor />);
  return { user: userEvent.setup({ delay: null }), last: () => saved[saved.length - 1] };
}

/** The part of the settings the backend reads (pkg/plugin/settings.go). */
const stored = (o: Options) => ({
  url: o.url,
  basicAuth: o.basicAuth,
  basicAuthUser: o.basicAuthUser,
  jsonData: o.jsonData,
  secureJsonData: o.secureJsonData,
  secureJsonFields: o.secureJsonFields,
});

test('shows the exporter URL, the timeout default, no auth and the TLS switches', () => {
  renderConfig();
  expect(screen.getByLabelText('URL *')).toHaveAttribute('placeholder', 'http://faceid-exporter:9479');
  expect(screen.getByLabelText('Timeout (s)')).toHaveAttribute('placeholder', '30');
  expect(screen.getByRole('radio', { name: 'No auth' })).toBeChecked();
  for (const label of ['Skip TLS verify', 'With CA cert', 'TLS client auth']) {
    expect(screen.getByLabelText(label)).not.toBeChecked();
  }
  expect(screen.queryByLabelText('User')).not.toBeInTheDocument();
  expect(screen.queryByLabelText('CA certificate')).not.toBeInTheDocument();
});

test('URL and timeout are saved where the backend reads them', async () => {
  const { user, last } = renderConfig();
  await user.type(screen.getByLabelText('URL *'), 'http://faceid-exporter:9479');
  await user.type(screen.getByLabelText('Timeout (s)'), '5');
  expect(stored(last())).toEqual({
    url: 'http://faceid-exporter:9479',
    basicAuth: false,
    basicAuthUser: '',
    jsonData: { timeout: 5 },
    secureJsonData: undefined,
    secureJsonFields: {},
  });
  await user.clear(screen.getByLabelText('Timeout (s)'));
  expect(last().jsonData).toEqual({ timeout: undefined });
});

test("basic auth: Grafana's basicAuth fields and the secret password", async () => {
  const { user, last } = renderConfig({ url: 'http://e:9479' });
  await user.click(screen.getByRole('radio', { name: 'Basic auth' }));
  await user.type(screen.getByLabelText('User'), 'grafana');
  await user.type(screen.getByLabelText('Password'), 's3cret');
  expect(stored(last())).toEqual({
    url: 'http://e:9479',
    basicAuth: true,
    basicAuthUser: 'grafana',
    jsonData: { authType: 'basic' },
    secureJsonData: { basicAuthPassword: 's3cret' },
    secureJsonFields: {},
  });
});

test('bearer token: a secret, and basic auth switched off', async () => {
  const { user, last } = renderConfig({ basicAuth: true, basicAuthUser: 'u', jsonData: { authType: 'basic' } });
  await user.click(screen.getByRole('radio', { name: 'Bearer token' }));
  await user.type(screen.getByLabelText('Token'), 'tok');
  expect(stored(last())).toMatchObject({
    basicAuth: false,
    jsonData: { authType: 'bearer' },
    secureJsonData: { bearerToken: 'tok' },
  });
  expect(screen.queryByLabelText('User')).not.toBeInTheDocument();
});

test('a configured secret shows as configured and can be reset', async () => {
  const { user, last } = renderConfig({ jsonData: { authType: 'bearer' }, secureJsonFields: { bearerToken: true } });
  expect(screen.getByLabelText('Token')).toHaveValue('configured');
  expect(screen.getByLabelText('Token')).toBeDisabled();
  await user.click(screen.getByRole('button', { name: 'Reset' }));
  expect(stored(last())).toMatchObject({
    secureJsonFields: { bearerToken: false },
    secureJsonData: { bearerToken: '' },
  });
  expect(screen.getByLabelText('Token')).toBeEnabled();
});

test('an exporter set up before authType existed: basicAuth means basic', () => {
  renderConfig({ basicAuth: true, basicAuthUser: 'old' });
  expect(screen.getByRole('radio', { name: 'Basic auth' })).toBeChecked();
  expect(screen.getByLabelText('User')).toHaveValue('old');
});

test('TLS: switches, server name and the certificates they need', async () => {
  const { user, last } = renderConfig({ url: 'https://e:9479' });
  await user.click(screen.getByLabelText('Skip TLS verify'));
  await user.click(screen.getByLabelText('With CA cert'));
  await user.click(screen.getByLabelText('TLS client auth'));
  await user.type(screen.getByLabelText('TLS server name'), 'faceid-exporter');
  await user.type(screen.getByLabelText('CA certificate'), 'CA');
  await user.type(screen.getByLabelText('Client certificate'), 'CERT');
  await user.type(screen.getByLabelText('Client key'), 'KEY');
  expect(stored(last())).toEqual({
    url: 'https://e:9479',
    basicAuth: false,
    basicAuthUser: '',
    jsonData: { tlsSkipVerify: true, tlsAuthWithCACert: true, tlsAuth: true, serverName: 'faceid-exporter' },
    secureJsonData: { tlsCACert: 'CA', tlsClientCert: 'CERT', tlsClientKey: 'KEY' },
    secureJsonFields: {},
  });
});
