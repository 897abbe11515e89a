// `clawpod policy ...`: write a starter policy, check one (and warn about what a run would
// refuse), explain one in plain words or as JSON.
import fs from 'node:fs';
import path from 'node:path';
import type { Context } from '../../core/context.js';
import { planEgress } from '../../core/egress.js';
import { UserError } from '../../core/errors.js';
import { resolveRules } from '../../core/exec.js';
import { resolveSettings } from '../../core/settings.js';
import { explainPolicy, explainPolicyJson } from '../../policy/explain.js';
import type { Rules } from '../../policy/types.js';
import { policyWarnings } from '../../policy/warnings.js';
import { groupHelp, HelpRequest, parseCommand, type Command } from '../args.js';
import { print, printJson, say } from '../output.js';

export const DEFAULT_POLICY_FILE = 'policy.yaml';

export const POLICY: Command[] = [
  {
    name: 'policy init',
    usage: '[FILE]',
    summary: `Write an annotated starter policy (default ./${DEFAULT_POLICY_FILE}): every key, its default and what it does.\nAs written it is the built-in strict policy; edit it, then clawpod policy check it.`,
    options: { force: { type: 'boolean', short: 'f', desc: 'overwrite FILE if it exists' } },
    examples: ['clawpod policy init', 'clawpod policy init agent.yaml && $EDITOR agent.yaml'],
  },
  {
    name: 'policy check',
    usage: 'FILE',
    summary:
      'Validate a policy file (exit 125 with one line naming the problem), then warn about what a run\nwould refuse or never use: an unset secret variable, an unreadable secret file, a secret host\nnot in network.allow. Warnings go to stderr as "warning: ..." and leave the exit code 0.',
    options: {},
    examples: ['clawpod policy check policy.yaml', 'clawpod policy check policy.yaml && clawpod exec -p policy.yaml -- npm test'],
  },
  {
    name: 'policy explain',
    usage: '[FILE]',
    summary: 'What a policy grants, in plain words (default: the built-in strict policy).',
    options: { json: { type: 'boolean', desc: 'the rules as one JSON document on stdout instead' } },
    notes: [
      'JSON fields (stable): version (1), source, resources {cpus, memoryBytes, pids, timeoutMs, diskBytes}, ' +
        'workspace {mode, at, ignore}, mounts [{host, path, mode}], network {allow, deny, hosts, extraCA}, ' +
        'secrets [{name, from, hosts, inject, unreachableHosts}] (never a value), env [NAME...] (names only), ' +
        'settings {git, npm} ("inherit", a list of keys, or null), tools {allow (null: all), deny, approve}.',
    ],
    examples: ['clawpod policy explain', 'clawpod policy explain policy.yaml', 'clawpod policy explain --json policy.yaml | jq .network'],
  },
];

export async function cmdPolicy(ctx: Context, args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '-h' || sub === '--help') throw new HelpRequest(groupHelp('policy', 'Write, check and explain policy files.', POLICY));
  const spec = POLICY.find((c) => c.name === `policy ${sub}`);
  if (!spec) throw new UserError(`unknown policy command "${sub}" (use ${POLICY.map((c) => c.name.split(' ')[1]).join(', ')})`);
  const { values, positionals } = parseCommand(spec, rest);
  const [file, ...extra] = positionals;
  if (extra.length) throw new UserError(`unexpected "${extra[0]}" (clawpod ${spec.name} takes one ${spec.usage.replace(/[[\]]/g, '')})`);
  if (sub === 'init') return initPolicy(file ?? DEFAULT_POLICY_FILE, Boolean(values.force));
  if (sub === 'check') {
    if (!file) throw new UserError('policy check needs a FILE (e.g. clawpod policy check policy.yaml; clawpod policy init writes one)');
    const rules = await resolveRules(ctx, file);
    const warnings = [...policyWarnings(rules), ...hostWarnings(ctx, rules)];
    for (const w of warnings) say(`warning: ${w}`);
    print(`policy ${rules.source}: ok${warnings.length ? ` (${warnings.length} warning${warnings.length === 1 ? '' : 's'} above)` : ''}`);
    return 0;
  }
  const rules = await resolveRules(ctx, file);
  if (values.json) printJson(explainPolicyJson(rules));
  else print([`policy ${rules.source}:`, ...explainPolicy(rules).map((l) => `  ${l}`)].join('\n'));
  return 0;
}

async function initPolicy(file: string, force: boolean): Promise<number> {
  // zod and yaml load here only: exec's default path never reaches this module's imports.
  const { starterPolicy } = await import('../../policy/docs.js');
  const target = path.resolve(file);
  try {
    fs.writeFileSync(target, starterPolicy(), { flag: force ? 'w' : 'wx', mode: 0o644 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new UserError(`${target} already exists (pass --force to overwrite it, or name another FILE)`);
    if (code === 'ENOENT') throw new UserError(`cannot write ${target}: its directory does not exist (create it, or name another FILE)`);
    if (code === 'EISDIR') throw new UserError(`${target} is a directory (name a file, e.g. ${path.join(file, DEFAULT_POLICY_FILE)})`);
    throw new UserError(`cannot write ${target}: ${code ?? (e as Error).message}`);
  }
  print(`clawpod: wrote ${target} (the built-in strict policy, annotated): edit it, then clawpod policy check ${file}`);
  return 0;
}

/** What `exec` would refuse on this host at run time, found with exec's own functions. */
function hostWarnings(ctx: Context, rules: Rules): string[] {
  const readFile = (p: string) => fs.readFileSync(p, 'utf8');
  const out: string[] = [];
  // One secret at a time, so every missing one is named, not only the first.
  const usable = rules.secrets.filter((s) => {
    try {
      planEgress({ ...rules, secrets: [s] }, ctx.env, readFile);
      return true;
    } catch (e) {
      out.push(`clawpod exec would refuse to start: ${(e as Error).message}`);
      return false;
    }
  });
  try {
    const plan = planEgress({ ...rules, secrets: usable }, ctx.env, readFile);
    resolveSettings(rules, plan.redact, { home: ctx.home, env: ctx.env, readFile });
  } catch (e) {
    out.push(`${(e as Error).message} (clawpod exec would refuse to start)`);
  }
  (rules.network.extraCA ?? []).forEach((f, i) => {
    let text: string;
    try {
      text = readFile(f);
    } catch (e) {
      out.push(
        `network.extraCA[${i}]: ${f} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}): a run with network would fail; give a PEM certificate file`,
      );
      return;
    }
    if (!text.includes('-----BEGIN CERTIFICATE-----'))
      out.push(`network.extraCA[${i}]: ${f} holds no PEM certificate (-----BEGIN CERTIFICATE-----), so it adds no root`);
  });
  return out;
}
