import { NotFoundException } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import type { FileEntity, FileRepository, FolderEntity, FolderRepository } from '#common';
import { AccessPolicy } from './access.policy.js';
import type { Principal } from './principal.js';

const ALICE = '00000000-0000-4000-8000-00000000000a';
const BOB = '00000000-0000-4000-8000-00000000000b';
const FILE = '00000000-0000-4000-8000-0000000000f1';
const FOLDER = '00000000-0000-4000-8000-0000000000d1';

/** Only the lookup the policy makes, over one file of Alice's (the real query is covered by test/api). */
const files = {
  async findOwned(ownerId: string, id: string): Promise<FileEntity | null> {
    return ownerId === ALICE && id === FILE ? ({ id, ownerId } as FileEntity) : null;
  },
} as unknown as FileRepository;

const folders = {
  async findOwned(ownerId: string, id: string): Promise<FolderEntity | null> {
    return ownerId === ALICE && id === FOLDER ? ({ id, ownerId } as FolderEntity) : null;
  },
} as unknown as FolderRepository;

const policy = new AccessPolicy(files, folders);
const user = (
  userId: string,
  via: 'session' | 'token' = 'session',
  role: 'user' | 'admin' = 'user',
): Principal => ({
  kind: 'user',
  userId,
  via,
  role,
});

describe('AccessPolicy', () => {
  it('the owner may read and delete the file, by session or token', async () => {
    for (const via of ['session', 'token'] as const) {
      expect((await policy.readableFile(user(ALICE, via), FILE)).id).toBe(FILE);
      expect((await policy.deletableFile(user(ALICE, via), FILE)).id).toBe(FILE);
      expect(await policy.findReadableFile(user(ALICE, via), FILE)).not.toBeNull();
    }
  });

  it("another user's file answers 404 exactly like one that does not exist", async () => {
    for (const [who, id] of [
      [BOB, FILE],
      [ALICE, BOB],
    ] as const) {
      await expect(policy.readableFile(user(who), id)).rejects.toThrow(
        new NotFoundException('No such file.'),
      );
      await expect(policy.deletableFile(user(who), id)).rejects.toThrow(
        new NotFoundException('No such file.'),
      );
      expect(await policy.findReadableFile(user(who), id)).toBeNull();
    }
  });

  it('a share link reads only the file it names, while its owner owns it, and never deletes', async () => {
    const share = (ownerId: string, fileId: string): Principal => ({
      kind: 'share',
      shareId: '00000000-0000-4000-8000-0000000000c1',
      ownerId,
      fileId,
    });
    expect((await policy.readableFile(share(ALICE, FILE), FILE)).id).toBe(FILE);
    // Another file id than the link's, a link whose owner does not own the file: 404.
    expect(await policy.findReadableFile(share(ALICE, FILE), BOB)).toBeNull();
    expect(await policy.findReadableFile(share(BOB, FILE), FILE)).toBeNull();
    await expect(policy.deletableFile(share(ALICE, FILE), FILE)).rejects.toThrow(
      new NotFoundException('No such file.'),
    );
  });

  it("only an admin administers, and being one reads nobody else's file", async () => {
    expect(policy.administers(user(BOB, 'session', 'admin'))).toBe(true);
    expect(policy.administers(user(BOB, 'token', 'admin'))).toBe(true);
    expect(policy.administers(user(ALICE))).toBe(false);
    expect(policy.administers({ kind: 'share', shareId: FILE, ownerId: ALICE, fileId: FILE })).toBe(false);
    expect(await policy.findReadableFile(user(BOB, 'session', 'admin'), FILE)).toBeNull();
    await expect(policy.deletableFile(user(BOB, 'token', 'admin'), FILE)).rejects.toThrow(
      new NotFoundException('No such file.'),
    );
  });

  it("a folder is its owner's alone: another user's and a share link's lookups answer 404", async () => {
    expect((await policy.folder(user(ALICE), FOLDER)).id).toBe(FOLDER);
    await expect(policy.folder(user(BOB), FOLDER)).rejects.toBeInstanceOf(NotFoundException);
    await expect(
      policy.folder({ kind: 'share', shareId: 's', fileId: FILE, ownerId: ALICE } as Principal, FOLDER),
    ).rejects.toBeInstanceOf(NotFoundException);
  });
});
