//! Authentication rules (`[[auth.rules]]` in `phantomdb.toml`), in the manner of PostgreSQL's
//! `pg_hba.conf`: an ordered list matched on the connection type, the database, the user and
//! the client address; the first rule that matches names the provider that checks the login.
//! No matching rule means the login is refused.
//!
//! With no rules configured every connection uses `scram` (what the server did before rules
//! existed).

use std::fmt;
use std::net::IpAddr;

use crate::config::{AuthConfig, Names, RuleConfig};

/// The provider that checks SCRAM-SHA-256 proofs against the roles' stored verifiers.
pub(crate) const SCRAM: &str = "scram";
/// The provider that refuses every login.
pub(crate) const REJECT: &str = "reject";

/// The rules in force, in order.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    rules: Vec<Rule>,
}

/// Which connections a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionType {
    /// TCP, with or without TLS.
    Host,
    /// TCP with TLS only.
    HostSsl,
    /// TCP without TLS only.
    HostNoSsl,
}

/// One rule of the user column.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UserPattern {
    All,
    Name(String),
    /// `+group`: the user is `group` or a member of it.
    Member(String),
}

/// A client address range: `10.0.0.0/8`, `::1/128`, or `all` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// One rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// 1-based position in the file, for logs and `phantomdb_auth_providers()`.
    pub(crate) number: usize,
    connection: ConnectionType,
    /// Empty: every database.
    databases: Vec<String>,
    users: Vec<UserPattern>,
    address: Option<Cidr>,
    /// `scram`, `reject` or the name of a plugin provider.
    pub(crate) provider: String,
    /// The provider's options (a JSON object).
    pub(crate) options: serde_json::Value,
    /// A plugin provider may receive a password sent without TLS.
    pub(crate) allow_cleartext_without_tls: bool,
}

/// What a login is matched on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Login<'a> {
    pub(crate) tls: bool,
    pub(crate) database: &'a str,
    pub(crate) user: &'a str,
    pub(crate) address: IpAddr,
}

impl Rules {
    /// Reads and checks the `[auth]` rules; the error names the rule (`auth.rules[2]: ...`).
    /// `tls` says whether the server has a certificate (a `hostssl` rule needs one).
    pub(crate) fn from_config(auth: &AuthConfig, tls: bool) -> Result<Self, String> {
        let rules = auth
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| Rule::parse(i + 1, r, tls).map_err(|e| format!("auth.rules[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { rules })
    }

    /// The rules, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter()
    }

    /// The first rule that matches `login`, with the implicit `host all all all scram` when
    /// no rules are configured. `is_member(user, group)` answers `+group` patterns.
    pub(crate) fn first_match(
        &self,
        login: &Login<'_>,
        is_member: impl Fn(&str, &str) -> bool,
    ) -> Option<Rule> {
        if self.rules.is_empty() {
            return Some(Rule::default_scram());
        }
        self.rules
            .iter()
            .find(|r| r.matches(login, &is_member))
            .cloned()
    }
}

impl Rule {
    fn parse(number: usize, raw: &RuleConfig, tls: bool) -> Result<Self, String> {
        let connection = match raw.connection.as_str() {
            "host" => ConnectionType::Host,
            "hostssl" => ConnectionType::HostSsl,
            "hostnossl" => ConnectionType::HostNoSsl,
            other => {
                return Err(format!(
                    "type \"{other}\" is not one of host, hostssl, hostnossl"
                ))
            }
        };
        if connection == ConnectionType::HostSsl && !tls {
            return Err(
                "a hostssl rule cannot match: [server] has no tls_cert and tls_key".to_string(),
            );
        }
        let databases = names(&raw.database, "database")?;
        let users = names(&raw.user, "user")?
            .into_iter()
            .map(|u| match u.strip_prefix('+') {
                Some("") => Err("user \"+\" names no role".to_string()),
                Some(group) => Ok(UserPattern::Member(group.to_string())),
                None => Ok(UserPattern::Name(u)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let users = if users.is_empty() {
            vec![UserPattern::All]
        } else {
            users
        };
        let address = match raw.address.trim() {
            "all" => None,
            text => Some(Cidr::parse(text)?),
        };
        let provider = raw.provider.trim().to_ascii_lowercase();
        if provider.is_empty() {
            return Err("provider is empty".to_string());
        }
        let options = serde_json::to_value(&raw.options)
            .map_err(|e| format!("options cannot be passed to a provider: {e}"))?;
        Ok(Self {
            number,
            connection,
            databases,
            users,
            address,
            provider,
            options,
            allow_cleartext_without_tls: raw.allow_cleartext_without_tls,
        })
    }

    /// `host all all all scram`.
    fn default_scram() -> Self {
        Self {
            number: 0,
            connection: ConnectionType::Host,
            databases: Vec::new(),
            users: vec![UserPattern::All],
            address: None,
            provider: SCRAM.to_string(),
            options: serde_json::Value::Object(Default::default()),
            allow_cleartext_without_tls: false,
        }
    }

    fn matches(&self, login: &Login<'_>, is_member: &impl Fn(&str, &str) -> bool) -> bool {
        let connection = match self.connection {
            ConnectionType::Host => true,
            ConnectionType::HostSsl => login.tls,
            ConnectionType::HostNoSsl => !login.tls,
        };
        let database =
            self.databases.is_empty() || self.databases.iter().any(|d| d == login.database);
        let address = self.address.is_none_or(|c| c.contains(login.address));
        connection
            && database
            && address
            && self.users.iter().any(|u| match u {
                UserPattern::All => true,
                UserPattern::Name(n) => n == login.user,
                UserPattern::Member(group) => is_member(login.user, group),
            })
    }
}

/// The rule as a `pg_hba.conf` line: `hostssl all +ldap_users 127.0.0.1/32 ldap`.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let connection = match self.connection {
            ConnectionType::Host => "host",
            ConnectionType::HostSsl => "hostssl",
            ConnectionType::HostNoSsl => "hostnossl",
        };
        let databases = if self.databases.is_empty() {
            "all".to_string()
        } else {
            self.databases.join(",")
        };
        let users = self
            .users
            .iter()
            .map(|u| match u {
                UserPattern::All => "all".to_string(),
                UserPattern::Name(n) => n.clone(),
                UserPattern::Member(g) => format!("+{g}"),
            })
            .collect::<Vec<_>>()
            .join(",");
        let address = match &self.address {
            None => "all".to_string(),
            Some(c) => format!("{}/{}", c.network, c.prefix),
        };
        write!(
            f,
            "{connection} {databases} {users} {address} {}",
            self.provider
        )
    }
}

/// The names of a database or user column; `all` (alone) is every name (an empty list).
fn names(raw: &Names, what: &str) -> Result<Vec<String>, String> {
    let list = match raw {
        Names::One(n) => vec![n.clone()],
        Names::Many(v) => v.clone(),
    };
    if list.is_empty() {
        return Err(format!("{what} is an empty list (write \"all\")"));
    }
    if list.iter().any(|n| n.trim().is_empty()) {
        return Err(format!("{what} has an empty name"));
    }
    if list.iter().any(|n| n == "all") {
        if list.len() > 1 {
            return Err(format!("{what}: \"all\" cannot be combined with names"));
        }
        return Ok(Vec::new());
    }
    Ok(list)
}

impl Cidr {
    /// `a.b.c.d/n`, `x:y::z/n`, or an address alone (a single host).
    fn parse(text: &str) -> Result<Self, String> {
        let (ip, prefix) = match text.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (text, None),
        };
        let network: IpAddr = ip
            .parse()
            .map_err(|_| format!("address \"{text}\" is not an IP address or CIDR range"))?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("address \"{text}\": prefix must be 0 to {bits}"))?,
        };
        let cidr = Self { network, prefix };
        if cidr.mask(network) != network {
            return Err(format!(
                "address \"{text}\" has bits set outside its prefix (did you mean {}/{prefix}?)",
                cidr.mask(network)
            ));
        }
        Ok(cidr)
    }

    /// `ip` with the bits beyond the prefix cleared.
    fn mask(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let m = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4((u32::from(v4) & m).into())
            }
            IpAddr::V6(v6) => {
                let m = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6((u128::from(v6) & m).into())
            }
        }
    }

    /// Whether `ip` is in the range (IPv4-mapped IPv6 addresses count as IPv4).
    fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && self.mask(ip) == self.network
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(toml: &str, tls: bool) -> Result<Rules, String> {
        // The `[auth]` table as a configuration file gives it; `tls`: a certificate is set.
        let config: crate::config::Config = toml::from_str(toml).map_err(|e| e.to_string())?;
        Rules::from_config(&config.auth, tls)
    }

    fn login<'a>(tls: bool, database: &'a str, user: &'a str, address: &str) -> Login<'a> {
        Login {
            tls,
            database,
            user,
            address: address.parse().expect("address"),
        }
    }

    const RULES: &str = r#"
[[auth.rules]]
type = "hostssl"
user = "+ldap_users"
address = "127.0.0.1/32"
provider = "ldap"
options = { url = "ldap://127.0.0.1:389" }

[[auth.rules]]
type = "host"
database = "secret"
user = "alice"
provider = "reject"

[[auth.rules]]
type = "host"
address = "10.0.0.0/8"
provider = "scram"
"#;

    #[test]
    fn the_first_matching_rule_wins() {
        let r = rules(RULES, true).expect("rules");
        let member = |user: &str, group: &str| user == "alice" && group == "ldap_users";
        let pick = |l: Login<'_>| r.first_match(&l, member).map(|r| r.number);
        assert_eq!(pick(login(true, "shop", "alice", "127.0.0.1")), Some(1));
        assert_eq!(pick(login(false, "shop", "alice", "127.0.0.1")), None);
        assert_eq!(pick(login(true, "shop", "bob", "127.0.0.1")), None);
        assert_eq!(pick(login(false, "secret", "alice", "10.1.2.3")), Some(2));
        assert_eq!(pick(login(false, "shop", "alice", "10.1.2.3")), Some(3));
        assert_eq!(pick(login(false, "shop", "bob", "11.0.0.1")), None);
        assert_eq!(
            pick(login(false, "shop", "bob", "::ffff:10.0.0.1")),
            Some(3)
        );
        let first = r.iter().next().expect("a rule");
        assert_eq!(
            first.to_string(),
            "hostssl all +ldap_users 127.0.0.1/32 ldap"
        );
        assert_eq!(first.options["url"], "ldap://127.0.0.1:389");
    }

    #[test]
    fn no_rules_means_scram_for_everyone() {
        let r = rules("", false).expect("rules");
        let rule = r
            .first_match(&login(false, "x", "y", "192.168.1.1"), |_, _| false)
            .expect("the default rule");
        assert_eq!(rule.provider, SCRAM);
    }

    #[test]
    fn bad_rules_are_refused_with_their_position() {
        let bad = |body: &str, tls: bool| {
            rules(&format!("[[auth.rules]]\n{body}\n"), tls).expect_err(body)
        };
        assert!(bad("type = \"local\"\nprovider = \"scram\"", false).contains("auth.rules[0]"));
        assert!(bad("type = \"hostssl\"\nprovider = \"scram\"", false).contains("tls_cert"));
        assert!(bad(
            "type = \"host\"\naddress = \"10.0.0.1/8\"\nprovider = \"scram\"",
            false
        )
        .contains("10.0.0.0/8"));
        assert!(bad(
            "type = \"host\"\naddress = \"10.0.0.0/33\"\nprovider = \"scram\"",
            false
        )
        .contains("prefix"));
        assert!(bad(
            "type = \"host\"\naddress = \"here\"\nprovider = \"scram\"",
            false
        )
        .contains("not an IP"));
        assert!(bad(
            "type = \"host\"\nuser = [\"all\", \"bob\"]\nprovider = \"scram\"",
            false
        )
        .contains("all"));
        assert!(
            bad("type = \"host\"\nuser = \"+\"\nprovider = \"scram\"", false)
                .contains("names no role")
        );
        assert!(bad("type = \"host\"", false).contains("provider"));
    }

    #[test]
    fn ipv6_ranges() {
        let c = Cidr::parse("fd00::/8").expect("cidr");
        assert!(c.contains("fd12::1".parse().expect("ip")));
        assert!(!c.contains("fe80::1".parse().expect("ip")));
        assert!(!c.contains("10.0.0.1".parse().expect("ip")));
        assert!(Cidr::parse("0.0.0.0/0")
            .expect("cidr")
            .contains("8.8.8.8".parse().expect("ip")));
    }
}
