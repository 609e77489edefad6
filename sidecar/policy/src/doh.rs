//! DNS over HTTPS: the endpoints and media types that would let an agent
//! resolve names (and tunnel data) behind the proxy's back.

/// Well-known DNS-over-HTTPS hosts. Reaching them would let an agent resolve
/// (and tunnel data through) DNS behind the proxy's back, so they are denied
/// unless a rule names the host exactly.
pub const DOH_HOSTS: &[&str] = &[
    "dns.google",
    "dns.google.com",
    "dns64.dns.google",
    "cloudflare-dns.com",
    "mozilla.cloudflare-dns.com",
    "chrome.cloudflare-dns.com",
    "1dot1dot1dot1.cloudflare-dns.com",
    "one.one.one.one",
    "security.cloudflare-dns.com",
    "family.cloudflare-dns.com",
    "dns.quad9.net",
    "dns9.quad9.net",
    "dns10.quad9.net",
    "dns11.quad9.net",
    "doh.opendns.com",
    "doh.familyshield.opendns.com",
    "dns.adguard.com",
    "dns.adguard-dns.com",
    "unfiltered.adguard-dns.com",
    "family.adguard-dns.com",
    "doh.cleanbrowsing.org",
    "dns.nextdns.io",
    "doh.mullvad.net",
    "dns.mullvad.net",
    "doh.dns.sb",
    "dns.twnic.tw",
    "doh.libredns.gr",
    "dns.alidns.com",
    "doh.pub",
    "doh.360.cn",
    "dns.controld.com",
    "freedns.controld.com",
    "ordns.he.net",
    "doh.applied-privacy.net",
];

/// Media types that mark a DNS-over-HTTPS exchange on any host.
pub const DOH_MEDIA_TYPES: &[&str] = &["application/dns-message", "application/dns-json"];
