//! Cluster IP allocation for Services, from the default service range 10.96.0.0/12.
//!
//! [`IpAllocator::assign`] decides the address a Service write gets (keeping the live
//! one, validating an explicit one, or picking the next free one) without reserving it,
//! so dry runs leave no trace; [`IpAllocator::commit`] reserves it once the write is
//! stored and [`IpAllocator::release`] frees it on delete.

use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

const BASE: u32 = u32::from_be_bytes([10, 96, 0, 0]);
const SIZE: u32 = 1 << 20;

/// Why a Service cannot have the address it asks for. The text is the detail of
/// kube-apiserver's 422 on `spec.clusterIPs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpError {
    /// An update asks for another address than the one the Service holds.
    #[error("Invalid value: [\"{0}\"]: may not change once set")]
    Immutable(String),
    /// The requested address is not an IPv4 address.
    #[error("Invalid value: [\"{0}\"]: must be a valid IP address")]
    NotAnAddress(String),
    /// The requested address is outside 10.96.0.0/12.
    #[error(
        "Invalid value: [\"{0}\"]: failed to allocate IP {0}: provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12"
    )]
    OutOfRange(String),
    /// Another Service holds the requested address.
    #[error(
        "Invalid value: [\"{0}\"]: failed to allocate IP {0}: provided IP is already allocated"
    )]
    Allocated(String),
    /// Every address of the range is taken.
    #[error("Internal error: range 10.96.0.0/12 is full")]
    Full,
}

impl IpError {
    /// A short, stable name for the cause, as a metric label.
    pub fn metric_label(&self) -> &'static str {
        match self {
            IpError::Immutable(_) => "immutable",
            IpError::NotAnAddress(_) => "not_an_address",
            IpError::OutOfRange(_) => "out_of_range",
            IpError::Allocated(_) => "allocated",
            IpError::Full => "full",
        }
    }
}

/// Which addresses of the service range are taken.
#[derive(Debug, Default)]
pub struct IpAllocator {
    used: BTreeSet<u32>,
}

fn cluster_ip(svc: &Value) -> Option<&str> {
    svc.pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn in_range(ip: u32) -> bool {
    ip > BASE && ip < BASE + SIZE - 1
}

impl IpAllocator {
    /// Fills in `spec.clusterIP`/`spec.clusterIPs` of `new`; an error is a 422.
    pub fn assign(&self, old: Option<&Value>, new: &mut Value) -> Result<(), IpError> {
        if new.pointer("/spec/type").and_then(Value::as_str) == Some("ExternalName") {
            return Ok(());
        }
        let old_ip = old.and_then(cluster_ip).map(String::from);
        let ip = match (cluster_ip(new).map(String::from), old_ip) {
            (Some(want), Some(have)) if want != have => return Err(IpError::Immutable(want)),
            (Some(want), _) => self.check_requested(old, &want)?,
            (None, Some(have)) => have,
            (None, None) => self.next_free()?,
        };
        if !new.get("spec").is_some_and(Value::is_object) {
            new["spec"] = json!({});
        }
        new["spec"]["clusterIP"] = json!(ip);
        new["spec"]["clusterIPs"] = json!([ip]);
        Ok(())
    }

    fn check_requested(&self, old: Option<&Value>, want: &str) -> Result<String, IpError> {
        if want == "None" {
            return Ok(want.into());
        }
        let parsed: Ipv4Addr = want
            .parse()
            .map_err(|_| IpError::NotAnAddress(want.into()))?;
        let n = u32::from(parsed);
        if !in_range(n) {
            return Err(IpError::OutOfRange(want.into()));
        }
        if self.used.contains(&n) && old.and_then(cluster_ip) != Some(want) {
            return Err(IpError::Allocated(want.into()));
        }
        Ok(want.into())
    }

    fn next_free(&self) -> Result<String, IpError> {
        // .1 is the `kubernetes` Service's address in a real cluster; start after it.
        (BASE + 2..BASE + SIZE - 1)
            .find(|ip| !self.used.contains(ip))
            .map(|ip| Ipv4Addr::from(ip).to_string())
            .ok_or(IpError::Full)
    }

    /// Reserves the address a stored Service holds.
    pub fn commit(&mut self, svc: &Value) {
        if let Some(Ok(ip)) = cluster_ip(svc).map(str::parse::<Ipv4Addr>) {
            self.used.insert(u32::from(ip));
        }
    }

    /// Frees the address of a deleted Service.
    pub fn release(&mut self, svc: &Value) {
        if let Some(Ok(ip)) = cluster_ip(svc).map(str::parse::<Ipv4Addr>) {
            self.used.remove(&u32::from(ip));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ip: Option<&str>) -> Value {
        match ip {
            Some(ip) => json!({ "spec": { "clusterIP": ip } }),
            None => json!({ "spec": {} }),
        }
    }

    #[test]
    fn allocates_unique_addresses_and_reuses_released_ones() {
        let mut a = IpAllocator::default();
        let mut s1 = svc(None);
        a.assign(None, &mut s1).expect("free range");
        a.commit(&s1);
        let mut s2 = svc(None);
        a.assign(None, &mut s2).expect("free range");
        assert_eq!(s1["spec"]["clusterIP"], "10.96.0.2");
        assert_eq!(s2["spec"]["clusterIP"], "10.96.0.3");
        assert_eq!(s2["spec"]["clusterIPs"], json!(["10.96.0.3"]));
        a.release(&s1);
        let mut s3 = svc(None);
        a.assign(None, &mut s3).expect("free range");
        assert_eq!(s3["spec"]["clusterIP"], "10.96.0.2");
    }

    #[test]
    fn explicit_addresses_are_checked() {
        let mut a = IpAllocator::default();
        let mut taken = svc(Some("10.96.1.1"));
        a.assign(None, &mut taken).expect("in range");
        a.commit(&taken);
        assert!(a.assign(None, &mut svc(Some("10.96.1.1"))).is_err());
        assert!(a.assign(None, &mut svc(Some("192.168.0.1"))).is_err());
        assert!(a.assign(None, &mut svc(Some("None"))).is_ok());
        let mut update = svc(None);
        a.assign(Some(&taken), &mut update).expect("kept");
        assert_eq!(update["spec"]["clusterIP"], "10.96.1.1");
        assert!(a.assign(Some(&taken), &mut svc(Some("10.96.1.2"))).is_err());
    }
}
