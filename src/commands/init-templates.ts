/**
 * What `systemprompt init` writes. Each YAML file names its schema with a modeline relative to
 * itself; the schemas are copied into the new repository's schemas/ folder, so editors find them
 * wherever the repository is cloned, without the package installed.
 */

export const PROJECT_TEMPLATE = `# yaml-language-server: $schema=./schemas/systemprompt.schema.json
# Project settings. Every key is optional; these are the defaults, written out.
tenancy:
  enabled: true                 # multi-tenancy is on by default
  isolation: per_tenant         # realm + namespace + database per tenant
  default_tenant: default       # where users go when no tenant is named
  naming:
    realm: "{{tenant_id}}"
    namespace: "tenant-{{tenant_id}}"
    database: "tenant_{{tenant_id}}"

# The scope catalog: users may only be granted these.
scopes:
  anonymous: Public access
  user: Authenticated user access
  read: Read tenant data
  write: Write tenant data
  admin: Administer the tenant
`;

export const DEFAULT_TENANT_TEMPLATE = `# yaml-language-server: $schema=../schemas/tenant.schema.json
# The default tenant: users go here when no tenant is named.
# Add users with: systemprompt admin users create --email EMAIL --scopes read,write
name: default
display_name: Default
users: []
`;

export const ASSISTANT_TEMPLATE = `# yaml-language-server: $schema=../../schemas/agent.schema.json
# An example agent. Every tenant gets it (tenant_aware), as an OAuth client of the tenant's realm.
name: assistant
tenant_aware: true
security:
  oauth2:
    scopes: ["tenant:{{tenant_id}}"]
  isolation: per_tenant
card:
  description: A tenant-aware assistant that only sees its own tenant's data
  securitySchemes:
    oauth2:
      type: oauth2
      flows:
        authorizationCode:
          authorizationUrl: "http://localhost:8080/api/v1/core/oauth/authorize"
          tokenUrl: "http://localhost:8080/api/v1/core/oauth/token"
          scopes:
            user: "Authenticated user access"
            read: "Read tenant data"
            write: "Write tenant data"
      description: "OAuth 2.0 authentication"
  security:
    - oauth2: ["user"]
`;
