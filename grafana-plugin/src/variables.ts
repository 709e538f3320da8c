import { CustomVariableSupport, DataQueryRequest, DataQueryResponse, FieldType, createDataFrame } from '@grafana/data';
import { Observable, from, map } from 'rxjs';

import { VariableQueryEditor } from './components/VariableQueryEditor';
import type { FaceIDDataSource } from './datasource';
import { FaceIDVariableQuery } from './types';

/**
 * Query variables from the backend's resources: Grafana runs query() and
 * takes the options from the text and value fields of the frame it returns.
 */
export class FaceIDVariableSupport extends CustomVariableSupport<FaceIDDataSource, FaceIDVariableQuery> {
  editor = VariableQueryEditor;

  constructor(private readonly datasource: FaceIDDataSource) {
    super();
  }

  query(request: DataQueryRequest<FaceIDVariableQuery>): Observable<DataQueryResponse> {
    const target = request.targets[0] ?? { refId: 'variable', type: 'channels' };
    return from(this.datasource.metricFindQuery(target, { scopedVars: request.scopedVars })).pipe(
      map((values) => ({
        data: [
          createDataFrame({
            refId: target.refId,
            fields: [
              { name: 'text', type: FieldType.string, values: values.map((v) => String(v.text)) },
              { name: 'value', type: FieldType.string, values: values.map((v) => String(v.value)) },
            ],
          }),
        ],
      }))
    );
  }
}
