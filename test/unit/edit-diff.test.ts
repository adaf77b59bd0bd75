import { describe, expect, it } from 'vitest';
import { unifiedDiff } from '../../src/edit/diff.js';

describe('unifiedDiff', () => {
  it('is empty for equal texts', () => {
    expect(unifiedDiff('a.yaml', 'x\n', 'x\n')).toBe('');
  });

  it('shows changes with three lines of context and separate hunks', () => {
    const a = Array.from({ length: 20 }, (_, i) => `l${i}`).join('\n') + '\n';
    const b = a.replace('l2\n', 'L2\n').replace('l17\n', 'l17\nnew\n');
    expect(unifiedDiff('f', a, b)).toBe(
      '--- a/f\n+++ b/f\n@@ -1,6 +1,6 @@\n l0\n l1\n-l2\n+L2\n l3\n l4\n l5\n@@ -16,5 +16,6 @@\n l15\n l16\n l17\n+new\n l18\n l19\n',
    );
  });

  it('new and deleted files', () => {
    expect(unifiedDiff('t.yaml', null, 'a\nb\n')).toBe('--- /dev/null\n+++ b/t.yaml\n@@ -0,0 +1,2 @@\n+a\n+b\n');
    expect(unifiedDiff('t.yaml', 'a\n', null)).toBe('--- a/t.yaml\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-a\n');
  });
});
