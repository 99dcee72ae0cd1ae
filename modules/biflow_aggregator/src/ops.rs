//! Arithmetic on UniRec scalars kept as their little-endian bytes, with the
//! semantics of the C aggregator's templates: sums wrap in the field's own
//! width, `char` is signed, addresses compare as C compares them (an
//! `ipaddr` as a little-endian 128-bit integer, a `macaddr` bytewise), `time`
//! as a signed 64-bit number.

use std::cmp::Ordering;
use unirec::Scalar;

/// Runs `$body` with `$t` bound to the Rust type of an integer scalar (or
/// `$other` for the rest).
macro_rules! with_int {
    ($s:expr, $t:ident => $body:expr, _ => $other:expr) => {
        match $s {
            Scalar::Char | Scalar::I8 => {
                type $t = i8;
                $body
            }
            Scalar::U8 => {
                type $t = u8;
                $body
            }
            Scalar::U16 => {
                type $t = u16;
                $body
            }
            Scalar::I16 => {
                type $t = i16;
                $body
            }
            Scalar::U32 => {
                type $t = u32;
                $body
            }
            Scalar::I32 => {
                type $t = i32;
                $body
            }
            Scalar::U64 => {
                type $t = u64;
                $body
            }
            Scalar::I64 => {
                type $t = i64;
                $body
            }
            _ => $other,
        }
    };
}

fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    let n = b.len().min(N);
    a[..n].copy_from_slice(&b[..n]);
    a
}

/// True for the types SUM and AVG take.
pub fn is_number(s: Scalar) -> bool {
    !matches!(s, Scalar::IpAddr | Scalar::MacAddr | Scalar::Time)
}

/// True for the types BITAND and BITOR take.
pub fn is_integer(s: Scalar) -> bool {
    !matches!(
        s,
        Scalar::IpAddr | Scalar::MacAddr | Scalar::Time | Scalar::Float | Scalar::Double
    )
}

/// True for signed numbers (what SORTED_MERGE_DIR can negate).
pub fn is_signed(s: Scalar) -> bool {
    matches!(
        s,
        Scalar::Char
            | Scalar::I8
            | Scalar::I16
            | Scalar::I32
            | Scalar::I64
            | Scalar::Float
            | Scalar::Double
    )
}

/// `acc += v` (both `s.size()` bytes).
pub fn add(s: Scalar, acc: &mut [u8], v: &[u8]) {
    let n = s.size();
    let out = &mut acc[..n];
    match s {
        Scalar::Float => {
            let x = f32::from_le_bytes(arr(out)) + f32::from_le_bytes(arr(v));
            out.copy_from_slice(&x.to_le_bytes());
        }
        Scalar::Double => {
            let x = f64::from_le_bytes(arr(out)) + f64::from_le_bytes(arr(v));
            out.copy_from_slice(&x.to_le_bytes());
        }
        _ => with_int!(s, T => {
            let x = T::from_le_bytes(arr(out)).wrapping_add(T::from_le_bytes(arr(v)));
            out.copy_from_slice(&x.to_le_bytes());
        }, _ => {}),
    }
}

/// `acc /= n` (AVG at export; integer division for integer types).
pub fn div(s: Scalar, acc: &mut [u8], n: u32) {
    if n == 0 {
        return;
    }
    let size = s.size();
    let out = &mut acc[..size];
    match s {
        Scalar::Float => {
            let x = f32::from_le_bytes(arr(out)) / n as f32;
            out.copy_from_slice(&x.to_le_bytes());
        }
        Scalar::Double => {
            let x = f64::from_le_bytes(arr(out)) / f64::from(n);
            out.copy_from_slice(&x.to_le_bytes());
        }
        _ => with_int!(s, T => {
            // i128 holds every integer type and the divisor exactly.
            let x = (i128::from(T::from_le_bytes(arr(out))) / i128::from(n)) as T;
            out.copy_from_slice(&x.to_le_bytes());
        }, _ => {}),
    }
}

/// Compares two values of type `s` (`None` when a float is NaN).
pub fn cmp(s: Scalar, a: &[u8], b: &[u8]) -> Option<Ordering> {
    match s {
        Scalar::Float => f32::from_le_bytes(arr(a)).partial_cmp(&f32::from_le_bytes(arr(b))),
        Scalar::Double => f64::from_le_bytes(arr(a)).partial_cmp(&f64::from_le_bytes(arr(b))),
        Scalar::IpAddr => Some(u128::from_le_bytes(arr(a)).cmp(&u128::from_le_bytes(arr(b)))),
        Scalar::MacAddr => Some(a[..6].cmp(&b[..6])),
        Scalar::Time => Some(i64::from_le_bytes(arr(a)).cmp(&i64::from_le_bytes(arr(b)))),
        _ => {
            with_int!(s, T => Some(T::from_le_bytes(arr(a)).cmp(&T::from_le_bytes(arr(b)))), _ => None)
        }
    }
}

/// "Empty" for FIRST_NON_EMPTY / LAST_NON_EMPTY: zero.
pub fn is_empty(s: Scalar, v: &[u8]) -> bool {
    match s {
        Scalar::Float => f32::from_le_bytes(arr(v)) == 0.0,
        Scalar::Double => f64::from_le_bytes(arr(v)) == 0.0,
        _ => v.iter().all(|&b| b == 0),
    }
}

/// `-v` for signed types (SORTED_MERGE_DIR); others are left alone.
pub fn negate(s: Scalar, v: &mut [u8]) {
    let size = s.size();
    let out = &mut v[..size];
    match s {
        Scalar::Float => {
            let x = -f32::from_le_bytes(arr(out));
            out.copy_from_slice(&x.to_le_bytes());
        }
        Scalar::Double => {
            let x = -f64::from_le_bytes(arr(out));
            out.copy_from_slice(&x.to_le_bytes());
        }
        Scalar::Char | Scalar::I8 | Scalar::I16 | Scalar::I32 | Scalar::I64 => with_int!(s, T => {
            let x = T::from_le_bytes(arr(out)).wrapping_neg();
            out.copy_from_slice(&x.to_le_bytes());
        }, _ => {}),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_wrap_in_the_fields_width() {
        let mut a = [250u8, 0, 0, 0];
        add(Scalar::U8, &mut a, &[10]);
        assert_eq!(a[0], 4);
        let mut a = 1000u32.to_le_bytes();
        add(Scalar::U32, &mut a, &7u32.to_le_bytes());
        assert_eq!(u32::from_le_bytes(a), 1007);
        let mut a = 1.5f64.to_le_bytes();
        add(Scalar::Double, &mut a, &2.25f64.to_le_bytes());
        assert_eq!(f64::from_le_bytes(a), 3.75);
        let mut a = (-3i16).to_le_bytes();
        add(Scalar::I16, &mut a, &1i16.to_le_bytes());
        assert_eq!(i16::from_le_bytes(a), -2);
    }

    #[test]
    fn averages_divide_signed_values_correctly() {
        let mut a = (-9i32).to_le_bytes();
        div(Scalar::I32, &mut a, 2);
        assert_eq!(i32::from_le_bytes(a), -4);
        let mut a = 9u64.to_le_bytes();
        div(Scalar::U64, &mut a, 2);
        assert_eq!(u64::from_le_bytes(a), 4);
        let mut a = 9f32.to_le_bytes();
        div(Scalar::Float, &mut a, 2);
        assert_eq!(f32::from_le_bytes(a), 4.5);
    }

    #[test]
    fn compares_as_c_does() {
        use Ordering::*;
        assert_eq!(cmp(Scalar::Char, &[0x80], &[1]), Some(Less)); // char is signed
        assert_eq!(cmp(Scalar::U8, &[0x80], &[1]), Some(Greater));
        assert_eq!(
            cmp(Scalar::Double, &f64::NAN.to_le_bytes(), &1f64.to_le_bytes()),
            None
        );
        // ipaddr: little-endian 128-bit, so the last byte weighs most.
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        a[0] = 9;
        b[15] = 1;
        assert_eq!(cmp(Scalar::IpAddr, &a, &b), Some(Less));
        assert_eq!(
            cmp(Scalar::MacAddr, &[1, 0, 0, 0, 0, 0], &[0, 9, 9, 9, 9, 9]),
            Some(Greater)
        );
    }

    #[test]
    fn emptiness_and_negation() {
        assert!(is_empty(Scalar::U32, &[0; 4]));
        assert!(!is_empty(Scalar::U32, &[0, 1, 0, 0]));
        assert!(is_empty(Scalar::Double, &(-0.0f64).to_le_bytes()));
        let mut v = [5u8];
        negate(Scalar::I8, &mut v);
        assert_eq!(v[0] as i8, -5);
        let mut v = [5u8];
        negate(Scalar::U8, &mut v);
        assert_eq!(v[0], 5);
        assert!(is_number(Scalar::Float) && !is_integer(Scalar::Float) && !is_number(Scalar::Time));
        assert!(is_signed(Scalar::I16) && !is_signed(Scalar::U16));
    }
}
