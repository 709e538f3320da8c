import { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { FieldSet, InlineField, InlineSwitch, Input, RadioButtonGroup, SecretInput, SecretTextArea } from '@grafana/ui';
import React from 'react';

import { AuthType, DEFAULT_TIMEOUT, FaceIDOptions, FaceIDSecureJsonData } from '../types';

export type Props = DataSourcePluginOptionsEditorProps<FaceIDOptions, FaceIDSecureJsonData>;

const LABEL = 24;

const AUTH_TYPES: Array<{ value: AuthType; label: string; description: string }> = [
  { value: 'none', label: 'No auth', description: 'The exporter has no --web.config.file users' },
  { value: 'basic', label: 'Basic auth', description: "basic_auth_users of the exporter's --web.config.file" },
  {
    value: 'bearer',
    label: 'Bearer token',
    description: 'Authorization: Bearer, for a proxy in front of the exporter',
  },
];

type SecretKey = keyof FaceIDSecureJsonData;

/** The datasource settings: the exporter's URL, timeout, authentication and TLS. */
export function ConfigEditor({ options, onOptionsChange }: Props) {
  const jsonData = options.jsonData ?? {};
  const secureFields = options.secureJsonFields ?? {};
  const secureData: FaceIDSecureJsonData = options.secureJsonData ?? {};
  const authType: AuthType =
    jsonData.authType ?? (options.basicAuth ? 'basic' : secureFields.bearerToken ? 'bearer' : 'none');

  const update = (patch: Partial<Props['options']>) => onOptionsChange({ ...options, ...patch });
  const updateJSON = (patch: Partial<FaceIDOptions>) => update({ jsonData: { ...jsonData, ...patch } });
  const setSecret = (key: SecretKey, value: string) => update({ secureJsonData: { ...secureData, [key]: value } });
  const resetSecret = (key: SecretKey) =>
    update({ secureJsonFields: { ...secureFields, [key]: false }, secureJsonData: { ...secureData, [key]: '' } });

  const secret = (key: SecretKey, label: string, placeholder: string) => (
    <InlineField label={label} labelWidth={LABEL} htmlFor={`faceid-${key}`}>
      <SecretInput
        id={`faceid-${key}`}
        width={40}
        placeholder={placeholder}
        isConfigured={!!secureFields[key]}
        value={secureData[key] ?? ''}
        onChange={(e) => setSecret(key, e.currentTarget.value)}
        onReset={() => resetSecret(key)}
      />
    </InlineField>
  );
  const secretText = (key: SecretKey, label: string, placeholder: string) => (
    <InlineField label={label} labelWidth={LABEL} htmlFor={`faceid-${key}`}>
      <SecretTextArea
        id={`faceid-${key}`}
        cols={60}
        rows={6}
        placeholder={placeholder}
        isConfigured={!!secureFields[key]}
        value={secureData[key] ?? ''}
        onChange={(e) => setSecret(key, e.currentTarget.value)}
        onReset={() => resetSecret(key)}
      />
    </InlineField>
  );
  const toggle = (key: 'tlsSkipVerify' | 'tlsAuthWithCACert' | 'tlsAuth', label: string, tooltip?: string) => (
    <InlineField label={label} labelWidth={LABEL} htmlFor={`faceid-${key}`} tooltip={tooltip}>
      <InlineSwitch
        id={`faceid-${key}`}
        value={!!jsonData[key]}
        onChange={(e) => updateJSON({ [key]: e.currentTarget.checked })}
      />
    </InlineField>
  );

  return (
    <>
      <FieldSet label="FaceID exporter">
        <InlineField
          label="URL"
          labelWidth={LABEL}
          required
          htmlFor="faceid-url"
          tooltip="Base URL of the exporter as the Grafana server reaches it (its --web.listen-address)"
        >
          <Input
            id="faceid-url"
            width={40}
            placeholder="http://faceid-exporter:9479"
            value={options.url ?? ''}
            onChange={(e) => update({ url: e.currentTarget.value })}
          />
        </InlineField>
        <InlineField
          label="Timeout (s)"
          labelWidth={LABEL}
          htmlFor="faceid-timeout"
          tooltip="For catalog, events, summary and ledger requests; the live stream has none"
        >
          <Input
            id="faceid-timeout"
            type="number"
            width={12}
            placeholder={String(DEFAULT_TIMEOUT)}
            value={jsonData.timeout === undefined ? '' : String(jsonData.timeout)}
            onChange={(e) => {
              const v = e.currentTarget.value;
              updateJSON({ timeout: v === '' ? undefined : Number(v) });
            }}
          />
        </InlineField>
      </FieldSet>
      <FieldSet label="Auth">
        <InlineField label="Authentication" labelWidth={LABEL} tooltip="What the exporter's --web.config.file requires">
          <RadioButtonGroup<AuthType>
            options={AUTH_TYPES}
            value={authType}
            onChange={(v) => update({ basicAuth: v === 'basic', jsonData: { ...jsonData, authType: v } })}
          />
        </InlineField>
        {authType === 'basic' && (
          <>
            <InlineField label="User" labelWidth={LABEL} htmlFor="faceid-basicAuthUser">
              <Input
                id="faceid-basicAuthUser"
                width={40}
                value={options.basicAuthUser ?? ''}
                onChange={(e) => update({ basicAuthUser: e.currentTarget.value })}
              />
            </InlineField>
            {secret('basicAuthPassword', 'Password', 'password')}
          </>
        )}
        {authType === 'bearer' && secret('bearerToken', 'Token', 'token')}
      </FieldSet>
      <FieldSet label="TLS">
        {toggle('tlsSkipVerify', 'Skip TLS verify', 'Testing only: accept any certificate')}
        {toggle('tlsAuthWithCACert', 'With CA cert')}
        {toggle('tlsAuth', 'TLS client auth')}
        <InlineField
          label="TLS server name"
          labelWidth={LABEL}
          htmlFor="faceid-serverName"
          tooltip="Host name to verify the certificate against, if not the URL's"
        >
          <Input
            id="faceid-serverName"
            width={40}
            value={jsonData.serverName ?? ''}
            onChange={(e) => updateJSON({ serverName: e.currentTarget.value })}
          />
        </InlineField>
        {jsonData.tlsAuthWithCACert && secretText('tlsCACert', 'CA certificate', '-----BEGIN CERTIFICATE-----')}
        {jsonData.tlsAuth && (
          <>
            {secretText('tlsClientCert', 'Client certificate', '-----BEGIN CERTIFICATE-----')}
            {secretText('tlsClientKey', 'Client key', '-----BEGIN PRIVATE KEY-----')}
          </>
        )}
      </FieldSet>
    </>
  );
}
