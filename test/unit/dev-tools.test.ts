import { mkdirSync, mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MissingToolError } from '../../src/errors.js';
import { findJdk, javaMajorFromRelease, parseGoVersion } from '../../src/dev/tools.js';

describe('javaMajorFromRelease', () => {
  it.each([
    ['JAVA_VERSION="25.0.1"', 25],
    ['IMPLEMENTOR="x"\nJAVA_VERSION="17.0.13"\n', 17],
    ['JAVA_VERSION="21"', 21],
    ['JAVA_VERSION="1.8.0_392"', 8],
    ['nothing', undefined],
  ])('%j -> %s', (text, major) => {
    expect(javaMajorFromRelease(text)).toBe(major);
  });
});

describe('parseGoVersion', () => {
  it('reads major and minor', () => {
    expect(parseGoVersion('go version go1.26.8 linux/amd64')).toEqual([1, 26]);
    expect(parseGoVersion('go version devel')).toBeUndefined();
  });
});

function fakeJdk(root: string, name: string, version: string): string {
  const home = join(root, name);
  mkdirSync(join(home, 'bin'), { recursive: true });
  writeFileSync(join(home, 'bin', 'java'), '#!/bin/sh\n');
  chmodSync(join(home, 'bin', 'java'), 0o755);
  writeFileSync(join(home, 'release'), `JAVA_VERSION="${version}"\n`);
  return home;
}

describe('findJdk', () => {
  it('picks the newest JDK that is new enough, ignoring a too-old JAVA_HOME', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sp-jvm-'));
    const old = fakeJdk(root, 'java-17', '17.0.13');
    fakeJdk(root, 'jdk-21', '21.0.5');
    const newest = fakeJdk(root, 'temurin-25', '25.0.1');
    const jdk = await findJdk(21, { JAVA_HOME: old, PATH: '' }, root);
    expect(jdk).toEqual({ home: newest, major: 25 });
  });

  it('uses JAVA_HOME when it qualifies', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sp-jvm-'));
    const j21 = fakeJdk(root, 'jdk-21', '21.0.5');
    fakeJdk(root, 'temurin-25', '25.0.1');
    expect((await findJdk(21, { JAVA_HOME: j21, PATH: '' }, root)).home).toBe(j21);
  });

  it('says what it found and what to install when none is new enough', async () => {
    const root = mkdtempSync(join(tmpdir(), 'sp-jvm-'));
    fakeJdk(root, 'java-17', '17.0.13');
    const err = await findJdk(21, { PATH: '' }, root).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingToolError);
    expect((err as MissingToolError).message).toMatch(/JDK 21 or newer; found: .*java-17 \(17\)/);
    expect((err as MissingToolError).hint).toMatch(/JAVA_HOME/);
  });
});
