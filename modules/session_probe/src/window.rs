//! Window boundaries on packet time (the user-space mode): the first packet
//! opens window 0 of `len` ns; a packet at or after a window's end closes
//! it first. Windows that would stay empty are skipped (their numbers too,
//! so WINDOW_ID keeps counting time).

#[derive(Clone, Debug)]
pub struct Windower {
    len: u64,
    end: Option<u64>,
    index: u32,
}

impl Windower {
    /// `len_ns` > 0 (the options check it).
    pub fn new(len_ns: u64) -> Windower {
        Windower {
            len: len_ns.max(1),
            end: None,
            index: 0,
        }
    }

    /// Called before a packet at `now` (or on an idle tick with the clock
    /// of the packets, live): the id of the window that ended, if one did.
    /// Call again until `None`.
    pub fn due(&mut self, now: u64) -> Option<u32> {
        let Some(end) = self.end else {
            self.end = Some(now.saturating_add(self.len));
            return None;
        };
        if now < end {
            return None;
        }
        let id = self.index;
        let empty = (now - end) / self.len;
        self.index = id
            .saturating_add(1)
            .saturating_add(u32::try_from(empty).unwrap_or(u32::MAX));
        self.end = Some(end.saturating_add(self.len.saturating_mul(empty + 1)));
        Some(id)
    }

    /// The id of the window open now.
    pub fn current(&self) -> u32 {
        self.index
    }

    /// Whether any packet opened a window yet.
    pub fn started(&self) -> bool {
        self.end.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_packet_time_and_skip_empty_ones() {
        let mut w = Windower::new(10);
        assert_eq!(w.due(100), None);
        assert_eq!(w.due(109), None);
        assert_eq!(w.due(110), Some(0));
        assert_eq!(w.due(110), None);
        assert_eq!(w.current(), 1);
        // 125 is in window 2 (120..130): window 1 ends, none is skipped.
        assert_eq!(w.due(125), Some(1));
        assert_eq!(w.current(), 2);
        // 161 is in window 6: window 2 ends, 3..5 are skipped.
        assert_eq!(w.due(161), Some(2));
        assert_eq!(w.due(161), None);
        assert_eq!(w.current(), 6);
        assert_eq!(w.due(169), None);
        assert_eq!(w.due(170), Some(6));
    }
}
