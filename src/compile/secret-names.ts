/**
 * The Secrets apply writes into each tenant namespace. A module of its own (no imports) so that the
 * runtime and the SDK can name them without loading the compiler.
 */
export const DATABASE_SECRET = 'systemprompt-database';
export const OIDC_SECRET = 'systemprompt-oidc';
