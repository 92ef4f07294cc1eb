import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/*
 * Test-only AWS Secrets Manager: the JSON 1.1 protocol on 127.0.0.1 (POST / with
 * `X-Amz-Target: secretsmanager.<Op>`), enough for the real SDK client with an endpoint override and
 * fake credentials. Implements CreateSecret, GetSecretValue, PutSecretValue, DescribeSecret and
 * DeleteSecret with version stages (AWSCURRENT / AWSPREVIOUS) and ClientRequestToken idempotency; errors
 * are `{"__type": "...", "message": "..."}` with status 400. Faults can be injected.
 */

export const SECRETS_MANAGER_OPS = [
  'CreateSecret',
  'GetSecretValue',
  'PutSecretValue',
  'DescribeSecret',
  'DeleteSecret',
] as const;
export type SecretsManagerOp = (typeof SECRETS_MANAGER_OPS)[number];

/** Options for the real SDK client pointed at the fake. */
export const FAKE_AWS = {
  region: 'us-east-1',
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
} as const;

export interface FakeSecretVersion {
  versionId: string;
  secretString: string | undefined;
  stages: string[];
}

export interface FakeSecretView {
  name: string;
  arn: string;
  deleted: boolean;
  versions: FakeSecretVersion[];
}

export interface SecretsManagerFake {
  /** `http://127.0.0.1:<port>`, for the client's `endpoint`. */
  endpoint: string;
  /** Requests received per operation, faulted ones included (so retries are visible). */
  calls: Record<SecretsManagerOp, number> & Record<string, number>;
  /** The next `n` requests (of `op`, or of any operation) fail with `__type` and status. */
  failNext(n: number, type?: string, status?: number, op?: SecretsManagerOp): void;
  /** The next `n` requests (of `op`, or any) get their connection destroyed without a response. */
  dropNext(n: number, op?: SecretsManagerOp): void;
  /** Current state of a secret (by name or ARN), or undefined. */
  secret(id: string): FakeSecretView | undefined;
  /** Resets the call counters. */
  resetCalls(): void;
  close(): Promise<void>;
}

interface Version {
  versionId: string;
  secretString: string | undefined;
  stages: Set<string>;
  createdAt: number;
}

interface Secret {
  name: string;
  arn: string;
  description: string | undefined;
  createdAt: number;
  deletedAt: number | undefined;
  versions: Map<string, Version>;
}

interface Fault {
  remaining: number;
  op: string | undefined;
  kind: 'error' | 'drop';
  type: string;
  status: number;
}

class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

type Body = Record<string, unknown>;

export async function startSecretsManagerFake(): Promise<SecretsManagerFake> {
  const secrets = new Map<string, Secret>();
  const faults: Fault[] = [];
  const calls = Object.fromEntries(SECRETS_MANAGER_OPS.map((op) => [op, 0])) as SecretsManagerFake['calls'];

  const find = (id: unknown): Secret => {
    if (typeof id !== 'string' || id.length === 0)
      throw new ApiError('InvalidParameterException', 'SecretId is required');
    const secret = secrets.get(id) ?? [...secrets.values()].find((s) => s.arn === id);
    if (!secret)
      throw new ApiError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    return secret;
  };
  const live = (id: unknown): Secret => {
    const secret = find(id);
    if (secret.deletedAt !== undefined) {
      throw new ApiError(
        'InvalidRequestException',
        "You can't perform this operation on the secret because it was marked for deletion.",
      );
    }
    return secret;
  };
  const stringField = (body: Body, field: string): string | undefined => {
    const value = body[field];
    if (value === undefined) return undefined;
    if (typeof value !== 'string')
      throw new ApiError('InvalidParameterException', `${field} must be a string`);
    return value;
  };
  const addVersion = (
    secret: Secret,
    token: string | undefined,
    secretString: string | undefined,
  ): Version => {
    const versionId = token ?? randomUUID();
    const existing = secret.versions.get(versionId);
    if (existing) {
      if (existing.secretString === secretString) return existing; // idempotent retry
      throw new ApiError(
        'ResourceExistsException',
        `A resource with the ID you requested already exists: version ${versionId} has another value.`,
      );
    }
    for (const version of secret.versions.values()) {
      version.stages.delete('AWSPREVIOUS');
      if (version.stages.delete('AWSCURRENT')) version.stages.add('AWSPREVIOUS');
    }
    const version: Version = { versionId, secretString, stages: new Set(['AWSCURRENT']), createdAt: now() };
    secret.versions.set(versionId, version);
    return version;
  };
  const stagesOf = (version: Version): string[] => [...version.stages];

  const ops: Record<SecretsManagerOp, (body: Body) => Body> = {
    CreateSecret(body) {
      const name = stringField(body, 'Name');
      if (!name || !/^[A-Za-z0-9/_+=.@-]{1,512}$/.test(name)) {
        throw new ApiError(
          'InvalidParameterException',
          'Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!',
        );
      }
      const secretString = stringField(body, 'SecretString');
      const token = stringField(body, 'ClientRequestToken');
      const existing = secrets.get(name);
      if (existing) {
        if (existing.deletedAt !== undefined) {
          throw new ApiError(
            'InvalidRequestException',
            "You can't create this secret because a secret with this name is already scheduled for deletion.",
          );
        }
        const same = token !== undefined ? existing.versions.get(token) : undefined;
        if (same && same.secretString === secretString) {
          return { ARN: existing.arn, Name: existing.name, VersionId: same.versionId };
        }
        throw new ApiError(
          'ResourceExistsException',
          `The operation failed because the secret ${name} already exists.`,
        );
      }
      const secret: Secret = {
        name,
        arn: `arn:aws:secretsmanager:us-east-1:000000000000:secret:${name}-${randomBytes(3).toString('hex')}`,
        description: stringField(body, 'Description'),
        createdAt: now(),
        deletedAt: undefined,
        versions: new Map(),
      };
      secrets.set(name, secret);
      if (secretString === undefined) return { ARN: secret.arn, Name: name };
      const version = addVersion(secret, token, secretString);
      return { ARN: secret.arn, Name: name, VersionId: version.versionId };
    },

    GetSecretValue(body) {
      const secret = live(body.SecretId);
      const versionId = stringField(body, 'VersionId');
      const stage = stringField(body, 'VersionStage');
      let version: Version | undefined;
      if (versionId !== undefined) {
        version = secret.versions.get(versionId);
        if (version && stage !== undefined && !version.stages.has(stage)) version = undefined;
      } else {
        const wanted = stage ?? 'AWSCURRENT';
        version = [...secret.versions.values()].find((v) => v.stages.has(wanted));
      }
      if (!version) {
        throw new ApiError(
          'ResourceNotFoundException',
          `Secrets Manager can't find the specified secret value for ${versionId !== undefined ? `VersionId: ${versionId}` : `staging label: ${stage ?? 'AWSCURRENT'}`}`,
        );
      }
      return {
        ARN: secret.arn,
        Name: secret.name,
        VersionId: version.versionId,
        SecretString: version.secretString,
        VersionStages: stagesOf(version),
        CreatedDate: version.createdAt,
      };
    },

    PutSecretValue(body) {
      const secret = live(body.SecretId);
      const secretString = stringField(body, 'SecretString');
      if (secretString === undefined)
        throw new ApiError('InvalidParameterException', 'SecretString is required');
      if (body.VersionStages !== undefined) {
        throw new ApiError('InvalidParameterException', 'This fake only supports the default VersionStages');
      }
      const version = addVersion(secret, stringField(body, 'ClientRequestToken'), secretString);
      return {
        ARN: secret.arn,
        Name: secret.name,
        VersionId: version.versionId,
        VersionStages: stagesOf(version),
      };
    },

    DescribeSecret(body) {
      const secret = find(body.SecretId);
      return {
        ARN: secret.arn,
        Name: secret.name,
        Description: secret.description,
        CreatedDate: secret.createdAt,
        DeletedDate: secret.deletedAt,
        VersionIdsToStages: Object.fromEntries(
          [...secret.versions.values()].map((v) => [v.versionId, stagesOf(v)]),
        ),
      };
    },

    DeleteSecret(body) {
      const secret = find(body.SecretId);
      if (body.ForceDeleteWithoutRecovery === true) {
        if (body.RecoveryWindowInDays !== undefined) {
          throw new ApiError(
            'InvalidParameterException',
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
          );
        }
        secrets.delete(secret.name);
        return { ARN: secret.arn, Name: secret.name, DeletionDate: now() };
      }
      if (secret.deletedAt !== undefined) {
        throw new ApiError('InvalidRequestException', 'The secret is already scheduled for deletion.');
      }
      const days = typeof body.RecoveryWindowInDays === 'number' ? body.RecoveryWindowInDays : 30;
      secret.deletedAt = now();
      return { ARN: secret.arn, Name: secret.name, DeletionDate: secret.deletedAt + days * 86_400 };
    },
  };

  const send = (res: ServerResponse, status: number, body: Body): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/x-amz-json-1.1',
      'Content-Length': Buffer.byteLength(text),
      'x-amzn-RequestId': randomUUID(),
    });
    res.end(text);
  };
  const sendError = (res: ServerResponse, error: ApiError): void =>
    send(res, error.status, { __type: error.type, message: error.message });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const target = req.headers['x-amz-target'];
    const op = typeof target === 'string' && target.startsWith('secretsmanager.') ? target.slice(15) : '';
    calls[op] = (calls[op] ?? 0) + 1;

    const fault = faults.find((f) => f.remaining > 0 && (f.op === undefined || f.op === op));
    if (fault) {
      fault.remaining--;
      if (fault.kind === 'drop') {
        req.socket.destroy();
        return;
      }
      sendError(res, new ApiError(fault.type, `Injected ${fault.type}`, fault.status));
      return;
    }
    if (req.method !== 'POST' || req.url !== '/') {
      sendError(res, new ApiError('UnknownOperationException', `${req.method} ${req.url} is not supported`));
      return;
    }
    if (!String(req.headers['content-type']).startsWith('application/x-amz-json-1.1')) {
      sendError(
        res,
        new ApiError('SerializationException', 'Content-Type must be application/x-amz-json-1.1'),
      );
      return;
    }
    if (!String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 Credential=')) {
      sendError(
        res,
        new ApiError('MissingAuthenticationTokenException', 'Missing SigV4 Authorization header'),
      );
      return;
    }
    const implementation = (ops as Record<string, ((body: Body) => Body) | undefined>)[op];
    if (!implementation) {
      sendError(
        res,
        new ApiError('UnknownOperationException', `Operation ${op || '(none)'} is not supported`),
      );
      return;
    }
    let body: unknown;
    try {
      body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
    } catch {
      sendError(res, new ApiError('SerializationException', 'Body is not JSON'));
      return;
    }
    try {
      if (typeof body !== 'object' || body === null)
        throw new ApiError('SerializationException', 'Body is not an object');
      send(res, 200, implementation(body as Body));
    } catch (error) {
      sendError(
        res,
        error instanceof ApiError ? error : new ApiError('InternalServiceError', String(error), 500),
      );
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, new ApiError('InternalServiceError', String(error), 500));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    failNext(n, type = 'ThrottlingException', status = 400, op) {
      faults.push({ remaining: n, op, kind: 'error', type, status });
    },
    dropNext(n, op) {
      faults.push({ remaining: n, op, kind: 'drop', type: '', status: 0 });
    },
    secret(id) {
      const secret = secrets.get(id) ?? [...secrets.values()].find((s) => s.arn === id);
      if (!secret) return undefined;
      return {
        name: secret.name,
        arn: secret.arn,
        deleted: secret.deletedAt !== undefined,
        versions: [...secret.versions.values()].map((v) => ({
          versionId: v.versionId,
          secretString: v.secretString,
          stages: stagesOf(v),
        })),
      };
    },
    resetCalls() {
      for (const key of Object.keys(calls)) calls[key] = 0;
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}

function now(): number {
  return Math.floor(Date.now() / 1000);
}
