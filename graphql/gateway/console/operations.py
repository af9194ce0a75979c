"""Every GraphQL operation the console sends: the public API, nothing else (a partner integration can do the same).

The console runs them in the gateway's process with the signed-in session's principal, through the same schema,
consent checks and access audit as any request to ``/graphql``.
"""

ME = "query Me { me { orgId orgType role } }"

INBOX = """
query Inbox($first: Int!) {
  inbox(first: $first) {
    edges { node { id survivorId referralType urgency status deadline createdAt referrerOrg
                   transitions { status actorOrg reason at } } }
  }
}"""

MY_REFERRALS = """
query MyReferrals($first: Int!) {
  myReferrals(first: $first) {
    edges { node { id survivorId referralType urgency status deadline createdAt recipientOrg } }
  }
}"""

PATHWAY = """
query Pathway($id: ID!) {
  survivor(id: $id, purpose: SERVICE_DELIVERY) {
    id
    screening { outcome isMinor screenerOrg identifiedAt }
    identity { givenName familyName otherNames dateOfBirth }
    contact { phone email address safeContactInstructions }
    narrative { acts means purposes indicators sector story }
    needs { referralType urgency reason }
    placements { shelterOrg unitType status destination }
    legalMatters { clinicOrg matterType status outcome milestones { milestone hearingDate } }
    health { providerOrg engaged service }
    employment { programOrg programType employed wageBand retained3Months retained6Months }
    referrals { id referralType urgency status referrerOrg recipientOrg createdAt sharedCategories
                withheldCategories transitions { status actorOrg reason at }
                border { survivorJurisdictions recipientJurisdictions } }
  }
}"""

LEDGER = "query Ledger($id: ID!) { accessLedger(survivorId: $id) { orgId role categories purpose at } }"

CONSENTS = """
query Consents($id: ID!) {
  consents(survivorId: $id) { id version granteeOrgId granteeOrgType categories purposes validUntil revokedAt
                              crossBorder anyJurisdiction }
}"""

DIRECTORY = "query Directory { directory { orgId name orgType jurisdictions } }"

PROVIDERS = """
query Providers($service: ReferralType!) {
  providers(service: $service) { orgId name status available }
}"""

SCREEN = """
mutation Screen($s: ScreeningInput!) {
  recordScreening(screening: $s, wait: 8000) { subjectId outcome { status code field message } }
}"""

GRANT = """
mutation Grant($id: ID!, $d: DirectiveInput!, $k: String) {
  grantConsent(survivorId: $id, directive: $d, idempotencyKey: $k, wait: 8000) { outcome { status code field message } }
}"""

REVOKE = """
mutation Revoke($id: ID!, $d: ID!) {
  revokeConsent(survivorId: $id, directiveId: $d, wait: 8000) { outcome { status code field message } }
}"""

REFER = """
mutation Refer($r: ReferralInput!, $k: String) {
  requestReferral(referral: $r, idempotencyKey: $k, wait: 8000) { referralId outcome { status code field message } }
}"""

MOVE = """
mutation Move($id: ID!, $s: ID!, $m: ReferralMoveInput!) {
  moveReferral(referralId: $id, survivorId: $s, move: $m, wait: 8000) { outcome { status code field message } }
}"""

ACT = """
mutation Act($a: ProviderActionInput!) {
  providerAction(action: $a, wait: 8000) { outcome { status code field message } }
}"""

BEDS = "query Beds { directory(service: EMERGENCY_SHELTER) { orgId capacity { unitType status available } } }"

WEBHOOKS = """
query Webhooks {
  webhooks { url events enabled disabledReason deliveries(first: 5) { eventType status attempts queuedAt } }
}"""

KEYS = "query Keys { apiKeys { id role label createdAt revokedAt } }"

CREATE_KEY = """
mutation CreateKey($role: Role!, $label: String) { createApiKey(role: $role, label: $label) { key } }"""

REVOKE_KEY = "mutation RevokeKey($id: ID!) { revokeApiKey(id: $id) { id revokedAt } }"

REGISTER_WEBHOOK = """
mutation RegisterWebhook($url: String!, $events: [String!]!) {
  registerWebhook(url: $url, events: $events) { secret }
}"""

AUDIT_CHAIN = "query AuditChain { auditChain { records intact brokenAt problem } }"

RELEASES = """
query Releases($period: String) {
  statisticsReleases(period: $period) {
    id period dimensions need organisation releasedAt csvPath cells { values { dimension value } count }
  }
}"""

RELEASE = """
mutation Release($d: [StatisticsDimension!]!, $p: String!, $n: ReferralType) {
  releaseStatistics(dimensions: $d, period: $p, need: $n, wait: 10000) {
    subjectId outcome { status code field message }
  }
}"""

OUTCOMES = """
query Outcomes($p: String!) {
  outcomeMonitoring(period: $p) {
    orgId referralType referrals answered medianHoursToAnswer p90HoursToAnswer accepted rejections { reason count }
    expired rerouted completed retained3Months retained6Months
  }
}"""

FOLLOW = "subscription Follow { referralUpdates { id status } }"

ALL = (
    ME,
    INBOX,
    MY_REFERRALS,
    PATHWAY,
    LEDGER,
    CONSENTS,
    DIRECTORY,
    PROVIDERS,
    SCREEN,
    GRANT,
    REVOKE,
    REFER,
    MOVE,
    ACT,
    BEDS,
    WEBHOOKS,
    KEYS,
    CREATE_KEY,
    REVOKE_KEY,
    REGISTER_WEBHOOK,
    AUDIT_CHAIN,
    RELEASES,
    RELEASE,
    OUTCOMES,
    FOLLOW,
)
"""Every document, for a deployment that serves persisted queries only: add these to its allow-list."""
