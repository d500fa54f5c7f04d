import { defineErrors } from "../../errors.js";

export const AuditErrors = defineErrors({
  INVALID_AUDIT_EVENT: { status: 400, message: "The audit event is not valid" },
  INVALID_CURSOR: { status: 400, message: "The cursor is not valid; use the nextCursor of a previous page" },
  TENANT_REQUIRED: {
    status: 400,
    message: "Select a tenant (X-Tenant-Id or an active organization) to read its audit trail",
  },
  RETENTION_ROLE_REQUIRED: {
    status: 403,
    message: "Audit retention runs only as a member of sv_maintenance or as the owner of audit.audit_logs",
  },
});
