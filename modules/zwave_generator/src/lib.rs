//! zwave_generator: the NEMEA tutorial's sensor generator — Z-Wave gateway
//! readings `uint32 GW_ID,int32 SOAFCount,int32 TIME`, record i carrying
//! SOAFCount = i and TIME = 100·i.

use unirec::{RecordBuilder, RecordError, Template};

/// The template of the readings.
pub const SPEC: &str = "uint32 GW_ID,int32 SOAFCount,int32 TIME";

/// Builds the i-th reading of gateway `gw_id` into `out`.
pub fn reading(t: &Template, gw_id: u32, i: u32, out: &mut Vec<u8>) -> Result<(), RecordError> {
    let mut b = RecordBuilder::new(t);
    let idx = |n| t.find(n).ok_or(RecordError::NoField(usize::MAX));
    b.set_u32(idx("GW_ID")?, gw_id)?;
    b.set_i32(idx("SOAFCount")?, i as i32)?;
    b.set_i32(idx("TIME")?, (i as i32).wrapping_mul(100))?;
    b.finish(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use unirec::RecordRef;

    #[test]
    fn third_reading() {
        let t = Template::parse(SPEC).unwrap();
        let mut out = Vec::new();
        reading(&t, 101, 3, &mut out).unwrap();
        let r = RecordRef::new_checked(&t, &out).unwrap();
        assert_eq!(r.get_u32(t.find("GW_ID").unwrap()), Some(101));
        assert_eq!(r.get_i32(t.find("SOAFCount").unwrap()), Some(3));
        assert_eq!(r.get_i32(t.find("TIME").unwrap()), Some(300));
    }
}
