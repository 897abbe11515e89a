import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readChangeSet } from './changeset.js';
import { diffStat, renderDiff } from './diff.js';
import { takeManifest } from './manifest.js';
import { fixture, link, put, writeList } from './testkit.js';

// What `git diff --cached` (git 2.39) printed for the same edits in a real repository, plus the
// `# binary:` size lines clawpod adds (git apply skips them); the type-change expectation below
// was checked the same way.
const GIT_OUTPUT = String.raw`
diff --git a/added.txt b/added.txt
new file mode 100644
index 0000000..9db7df0
--- /dev/null
+++ b/added.txt
@@ -0,0 +1,2 @@
+hello
+world
\ No newline at end of file
diff --git a/bin.dat b/bin.dat
index be44339..26dabd4 100644
Binary files a/bin.dat and b/bin.dat differ
# binary: 4 bytes -> 4 bytes
diff --git a/empty.txt b/empty.txt
new file mode 100644
index 0000000..e69de29
diff --git a/gone.txt b/gone.txt
deleted file mode 100644
index e5e6fb7..0000000
--- a/gone.txt
+++ /dev/null
@@ -1,2 +0,0 @@
-bye
-now
diff --git a/lines.txt b/lines.txt
index f00c965..33011fd 100644
--- a/lines.txt
+++ b/lines.txt
@@ -2,7 +2,7 @@
 2
 3
 4
-5
+five
 6
 7
 8
diff --git a/ln b/ln
index 3defea2..f63c08c 120000
--- a/ln
+++ b/ln
@@ -1 +1 @@
-old-target
\ No newline at end of file
+new-target
\ No newline at end of file
diff --git a/newbin b/newbin
new file mode 100644
index 0000000..7a002a8
Binary files /dev/null and b/newbin differ
# binary: none -> 2 bytes
diff --git a/newlink b/newlink
new file mode 120000
index 0000000..7fcf08e
--- /dev/null
+++ b/newlink
@@ -0,0 +1 @@
+lines.txt
\ No newline at end of file
diff --git a/nonl.txt b/nonl.txt
index 20cbb4d..7bcfef5 100644
--- a/nonl.txt
+++ b/nonl.txt
@@ -1 +1 @@
-no newline
\ No newline at end of file
+no newline
diff --git a/run.sh b/run.sh
old mode 100644
new mode 100755
diff --git a/tail.txt b/tail.txt
index 2fa992c..adde431 100644
--- a/tail.txt
+++ b/tail.txt
@@ -1 +1,2 @@
 keep
+last
`.slice(1);

test('renders the same unified diff git does for adds, deletes, edits, modes, symlinks, binaries', () => {
  const f = fixture();
  try {
    put(f.ws, 'lines.txt', '1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n');
    put(f.ws, 'nonl.txt', 'no newline');
    put(f.ws, 'gone.txt', 'bye\nnow\n');
    put(f.ws, 'run.sh', 'echo\n');
    put(f.ws, 'bin.dat', Buffer.from('ab\0c'));
    link(f.ws, 'ln', 'old-target');
    put(f.ws, 'tail.txt', 'keep\n');
    const m = takeManifest(f.ws);

    put(f.tree, 'lines.txt', '1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n');
    put(f.tree, 'nonl.txt', 'no newline\n');
    writeList(f.cs, 'deleted.lst', ['gone.txt']);
    put(f.tree, 'run.sh', 'echo\n', 0o755);
    put(f.tree, 'bin.dat', Buffer.from('ab\0d'));
    link(f.tree, 'ln', 'new-target');
    put(f.tree, 'added.txt', 'hello\nworld');
    link(f.tree, 'newlink', 'lines.txt');
    put(f.tree, 'empty.txt', '');
    put(f.tree, 'newbin', Buffer.from('x\0'));
    put(f.tree, 'tail.txt', 'keep\nlast\n');

    const changes = readChangeSet(f.cs, f.ws, m);
    assert.equal(renderDiff(changes, f.cs, f.ws), GIT_OUTPUT);
    assert.deepEqual(diffStat(changes), {
      files: 11,
      insertions: 7,
      deletions: 5,
      uncounted: 0,
      summary: '11 files changed, 7 insertions(+), 5 deletions(-)',
    });
  } finally {
    f.cleanup();
  }
});

test('a type change renders as a deletion followed by an addition; a directory gets a # line', () => {
  const f = fixture();
  try {
    put(f.ws, 'cfg', 'a\n');
    put(f.ws, 'dir/x', 'x\n');
    const m = takeManifest(f.ws);
    link(f.tree, 'cfg', 'cfg.real');
    put(f.tree, 'dir', 'flat\n', 0o755);
    const changes = readChangeSet(f.cs, f.ws, m);
    assert.equal(
      renderDiff(changes, f.cs, f.ws),
      [
        'diff --git a/cfg b/cfg',
        'deleted file mode 100644',
        'index 7898192..0000000',
        '--- a/cfg',
        '+++ /dev/null',
        '@@ -1 +0,0 @@',
        '-a',
        'diff --git a/cfg b/cfg',
        'new file mode 120000',
        'index 0000000..31adcc2',
        '--- /dev/null',
        '+++ b/cfg',
        '@@ -0,0 +1 @@',
        '+cfg.real',
        '\\ No newline at end of file',
        '# deleted directory: dir/',
        'diff --git a/dir b/dir',
        'new file mode 100755',
        'index 0000000..42b509e',
        '--- /dev/null',
        '+++ b/dir',
        '@@ -0,0 +1 @@',
        '+flat',
        'diff --git a/dir/x b/dir/x',
        'deleted file mode 100644',
        'index 587be6b..0000000',
        '--- a/dir/x',
        '+++ /dev/null',
        '@@ -1 +0,0 @@',
        '-x',
        '',
      ].join('\n'),
    );
    assert.equal(diffStat(changes).summary, '3 files changed, 2 insertions(+), 2 deletions(-)');
  } finally {
    f.cleanup();
  }
});

test('hunks keep 3 lines of context and split when edits are far apart', () => {
  const f = fixture();
  try {
    const lines = Array.from({ length: 20 }, (_, i) => `l${i + 1}`);
    put(f.ws, 'long.txt', lines.join('\n') + '\n');
    const m = takeManifest(f.ws);
    const edited = [...lines];
    edited[1] = 'L2';
    edited[17] = 'L18';
    put(f.tree, 'long.txt', edited.join('\n') + '\n');
    const out = renderDiff(readChangeSet(f.cs, f.ws, m), f.cs, f.ws);
    const hunks = out.split('\n').filter((l) => l.startsWith('@@'));
    assert.deepEqual(hunks, ['@@ -1,5 +1,5 @@', '@@ -15,6 +15,6 @@']);
  } finally {
    f.cleanup();
  }
});

test('a file name with a newline is quoted, so it cannot forge diff lines', () => {
  const f = fixture();
  try {
    const m = takeManifest(f.ws);
    put(f.tree, 'x\n+++ b/evil', 'hi\n');
    const out = renderDiff(readChangeSet(f.cs, f.ws, m), f.cs, f.ws);
    assert.ok(out.split('\n').includes('diff --git "a/x\\n+++ b/evil" "b/x\\n+++ b/evil"'), out);
    assert.ok(out.split('\n').includes('# new directory: "x\\n+++ b/" (mode 0755)'), out);
    assert.ok(out.includes('+++ "b/x\\n+++ b/evil"\n'));
  } finally {
    f.cleanup();
  }
});

test('stat wording follows git for singular counts and zero lines', () => {
  const f = fixture();
  try {
    put(f.ws, 'a', 'a\n');
    put(f.ws, 'b', 'b\n');
    const m = takeManifest(f.ws);
    put(f.tree, 'a', 'a\n', 0o755);
    assert.equal(diffStat(readChangeSet(f.cs, f.ws, m)).summary, '1 file changed, 0 insertions(+), 0 deletions(-)');
    put(f.tree, 'b', '');
    assert.equal(diffStat(readChangeSet(f.cs, f.ws, m)).summary, '2 files changed, 1 deletion(-)');
    assert.equal(diffStat([]).summary, '0 files changed');
  } finally {
    f.cleanup();
  }
});
