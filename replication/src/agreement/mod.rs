//! Agreement: binary (ABBA) and multi-valued validated (MVBA).

pub mod binary;
pub mod validated;
