import { describe, expect, it } from 'vitest';
import {
  deleteUserJobId,
  isDeleteUserPayload,
  isEncryptFilePayload,
  isJobName,
  isJobProgress,
  jobResultOf,
} from './index.js';

const result = {
  fileId: '5f0c2d4e-8a8b-4c1e-9d57-3f1a2b3c4d5e',
  sha1: 'a'.repeat(40),
  sha256: 'b'.repeat(64),
  size: 3,
  encryptedSize: 120,
  ownerId: '0e6f1c9a-2b3d-4e5f-8a9b-0c1d2e3f4a5b',
};

describe('job contracts', () => {
  it('reads an encrypt-file result as BullMQ reports it, as JSON text or a value', () => {
    expect(jobResultOf('encrypt-file', JSON.stringify(result))).toEqual(result);
    expect(jobResultOf('encrypt-file', { ...result, skipped: true })).toEqual({ ...result, skipped: true });
  });

  it('refuses results that are not one, instead of casting them', () => {
    expect(jobResultOf('encrypt-file', 'not json')).toBeUndefined();
    expect(jobResultOf('encrypt-file', null)).toBeUndefined();
    expect(jobResultOf('encrypt-file', { ...result, size: '3' })).toBeUndefined();
    expect(jobResultOf('encrypt-file', { ...result, ownerId: 7 })).toBeUndefined();
  });

  it('checks payloads, progress and job names', () => {
    expect(isEncryptFilePayload({ fileId: result.fileId, ownerId: result.ownerId })).toBe(true);
    expect(isEncryptFilePayload({ fileId: '', ownerId: result.ownerId })).toBe(false);
    expect(isEncryptFilePayload({ ownerId: result.ownerId })).toBe(false);
    expect(isJobProgress({ stage: 'encrypting', bytesDone: 1, bytesTotal: 2 })).toBe(true);
    expect(isJobProgress({ stage: 'processing', bytesDone: 1, bytesTotal: 2 })).toBe(false);
    expect(isJobName('encrypt-file')).toBe(true);
    expect(isJobName('toString')).toBe(false);
  });

  it('checks delete-user payloads and results; its job id names the user', () => {
    expect(isJobName('delete-user')).toBe(true);
    expect(isDeleteUserPayload({ userId: result.ownerId, requestedBy: result.fileId })).toBe(true);
    expect(isDeleteUserPayload({ userId: 'bob', requestedBy: result.fileId })).toBe(false);
    expect(isDeleteUserPayload({ userId: result.ownerId })).toBe(false);
    expect(jobResultOf('delete-user', JSON.stringify({ userId: result.ownerId, deletedFiles: 2 }))).toEqual({
      userId: result.ownerId,
      deletedFiles: 2,
    });
    expect(jobResultOf('delete-user', { userId: result.ownerId })).toBeUndefined();
    expect(deleteUserJobId(result.ownerId)).toBe(`delete-user-${result.ownerId}`);
  });
});
