// Public face of the hash-chained audit log (DESIGN.md, "Audit log"). This module tree imports
// nothing else of ours, so every other part can write into it without cycles.
export { canonicalJson } from './canonical.js';
export { AuditError, GENESIS_PREV, type AuditEvent, type EventType } from './event.js';
export { AuditWriter, DEFAULT_AUDIT_MAX_BYTES, type AuditWriterOptions } from './writer.js';
export { auditEvents, readAudit, verifyAudit, type VerifyOptions, type VerifyResult } from './verify.js';
