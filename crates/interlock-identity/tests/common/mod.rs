//! Shared by the test binaries. Each binary uses a different part of it, so the
//! parts one binary leaves unused are not dead code.
#![allow(dead_code)]

use interlock_identity::{CertificateAuthority, IssuedCertificate, Role, Validity};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};

/// A CA in a temporary directory that lives as long as the value.
pub struct Pki {
    pub dir: TempDir,
    pub ca: CertificateAuthority,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().expect("temporary directory");
        let ca = CertificateAuthority::init(&dir.path().join("ca")).expect("ca init");
        Pki { dir, ca }
    }

    pub fn issue(&self, role: Role, name: &str, hosts: &[&str], validity: Validity) -> IssuedCertificate {
        self.ca.issue(role, name, hosts, validity).expect("issue")
    }

    /// A gateway certificate for a server on loopback.
    pub fn server(&self, name: &str) -> IssuedCertificate {
        self.issue(Role::Gateway, name, &["localhost", "127.0.0.1"], valid())
    }
}

/// Now, to the whole second: what certificates can express.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now - Duration::nanoseconds(i64::from(now.nanosecond()))
}

/// Valid from a minute ago for thirty days.
pub fn valid() -> Validity {
    Validity::days_from(now() - Duration::minutes(1), 30)
}

/// Valid for a week that ended yesterday.
pub fn expired() -> Validity {
    let not_after = now() - Duration::days(1);
    Validity { not_before: not_after - Duration::days(7), not_after }
}
