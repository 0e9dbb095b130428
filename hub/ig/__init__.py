"""Information governance over the audit log: the reports, finding a person's hub id, and
exports."""
