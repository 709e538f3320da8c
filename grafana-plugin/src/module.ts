import { DataSourcePlugin } from '@grafana/data';

import { ConfigEditor } from './components/ConfigEditor';
import { QueryEditor } from './components/QueryEditor';
import { FaceIDDataSource } from './datasource';
import { FaceIDOptions, FaceIDQuery, FaceIDSecureJsonData } from './types';

export const plugin = new DataSourcePlugin<FaceIDDataSource, FaceIDQuery, FaceIDOptions, FaceIDSecureJsonData>(
  FaceIDDataSource
)
  .setConfigEditor(ConfigEditor)
  .setQueryEditor(QueryEditor);
