//! One scenario per protocol: how the simulator drives it and which properties it checks.

pub mod atomic;
pub mod binary;
pub mod consistent;
pub mod reliable;
pub mod secure;
pub mod validated;

use crate::PartyId;

/// Checks that every honest node's outputs equal the first honest node's (agreement and, for
/// sequences, total order).
pub fn check_agreement<O: PartialEq + std::fmt::Debug>(honest: &[PartyId], outputs: &[Vec<O>]) -> Result<(), String> {
    let Some(&first) = honest.first() else {
        return Ok(());
    };
    for &node in honest {
        let (a, b) = (&outputs[first], &outputs[node]);
        let common = a.len().min(b.len());
        if a[..common] != b[..common] {
            return Err(format!("agreement: node {first} output {a:?}, node {node} output {b:?}"));
        }
    }
    Ok(())
}
