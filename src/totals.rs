//! Chunk planning and running-total accounting (docs/transaction.md, steps 4–6): the arithmetic the driver trusts, kept
//! pure so that it can be proven by property tests.

use std::fmt;

use crate::wire::{Count, MAX_ROWS_PER_POST, UploadResults};

/// One post of a transaction: rows `start..start + rows` of the snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// 1-based position in the transaction.
    pub number: usize,
    pub start: u64,
    pub rows: usize,
}

/// Splits `total` rows into consecutive chunks of `size` rows (the last may be shorter).
///
/// `size` is clamped to 1..=1000, the vendor's limit per post.
pub fn chunks(total: u64, size: usize) -> impl Iterator<Item = Chunk> {
    let size = size.clamp(1, MAX_ROWS_PER_POST) as u64;
    (0..total.div_ceil(size)).map(move |i| Chunk {
        number: i as usize + 1,
        start: i * size,
        rows: (total - i * size).min(size) as usize,
    })
}

/// The chunks of rows `start..total`, numbered as if the first `start` rows had been posted in chunks of
/// `size` too (what a resumed transaction posts).
pub fn chunks_from(start: u64, total: u64, size: usize) -> impl Iterator<Item = Chunk> {
    let size_rows = size.clamp(1, MAX_ROWS_PER_POST);
    let before = start.div_ceil(size_rows as u64) as usize;
    chunks(total.saturating_sub(start), size_rows).map(move |c| Chunk {
        number: c.number + before,
        start: c.start + start,
        rows: c.rows,
    })
}

/// What the driver knows before it reads an upload answer.
#[derive(Clone, Copy, Debug)]
pub struct Expectation<'a> {
    pub transactionid: &'a str,
    /// The total declared at begintransaction.
    pub declared: u64,
    /// Rows confirmed before this chunk.
    pub confirmed: u64,
    /// Rows in this chunk.
    pub rows: u64,
    /// Whether an earlier attempt of this chunk failed in a way that may have let the server count it.
    pub maybe_counted_before: bool,
}

/// The verdict on one upload answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The chunk was counted exactly once: the new confirmed total.
    Confirmed {
        running: u64,
    },
    /// A lost answer's attempt was counted too: the server holds this chunk twice (docs/transaction.md, step 5).
    Duplicate {
        running: u64,
    },
    Mismatch(Mismatch),
}

/// A figure in an answer that is not what it must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub figure: &'static str,
    pub expected: String,
    pub received: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is {}, expected {}",
            self.figure, self.received, self.expected
        )
    }
}

fn mismatch(figure: &'static str, expected: impl ToString, received: impl ToString) -> Verdict {
    Verdict::Mismatch(Mismatch {
        figure,
        expected: expected.to_string(),
        received: received.to_string(),
    })
}

/// Applies the four checks of docs/transaction.md step 4 and the duplicate rule of step 5 to an upload answer.
pub fn check_upload(expect: &Expectation, reply: &UploadResults) -> Verdict {
    if reply.transactionid.0 != expect.transactionid {
        return mismatch(
            "transactionid",
            expect.transactionid,
            &reply.transactionid.0,
        );
    }
    if reply.expectedtotal != Count(expect.declared) {
        return mismatch("expectedtotal", expect.declared, reply.expectedtotal);
    }
    if reply.uploadedtotal != Count(expect.rows) {
        return mismatch("uploadedtotal", expect.rows, reply.uploadedtotal);
    }
    let once = expect.confirmed + expect.rows;
    let twice = once + expect.rows;
    match reply.runningtotal.0 {
        running if running == once => Verdict::Confirmed { running },
        running if running == twice && expect.maybe_counted_before => {
            Verdict::Duplicate { running }
        }
        running => mismatch("runningtotal", once, running),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{SUCCESS, Text};
    use proptest::prelude::*;

    fn reply(txid: &str, uploaded: u64, running: u64, expected: u64) -> UploadResults {
        UploadResults {
            message: SUCCESS.into(),
            transactionid: Text(txid.into()),
            batchid: None,
            uploadedtotal: Count(uploaded),
            runningtotal: Count(running),
            expectedtotal: Count(expected),
            feedtype: None,
            startdate: None,
            enddate: None,
            rr_store_id: None,
            partnerstoreid: None,
            partnertransactionid: None,
        }
    }

    fn expect(confirmed: u64, rows: u64, maybe: bool) -> Expectation<'static> {
        Expectation {
            transactionid: "T1",
            declared: 2500,
            confirmed,
            rows,
            maybe_counted_before: maybe,
        }
    }

    proptest! {
        #[test]
        fn chunks_partition_the_rows_exactly(total in 0u64..20_000, size in 0usize..3000) {
            let mut next = 0;
            for (i, c) in chunks(total, size).enumerate() {
                prop_assert_eq!(c.number, i + 1);
                prop_assert_eq!(c.start, next);
                prop_assert!(c.rows >= 1 && c.rows <= MAX_ROWS_PER_POST);
                next += c.rows as u64;
            }
            prop_assert_eq!(next, total);
        }

        #[test]
        fn confirming_every_chunk_once_reaches_the_declared_total(total in 1u64..20_000, size in 1usize..=1000) {
            let mut confirmed = 0;
            for c in chunks(total, size) {
                let e = Expectation { transactionid: "T", declared: total, confirmed, rows: c.rows as u64, maybe_counted_before: false };
                let verdict = check_upload(&e, &reply("T", c.rows as u64, confirmed + c.rows as u64, total));
                prop_assert_eq!(verdict, Verdict::Confirmed { running: confirmed + c.rows as u64 });
                confirmed += c.rows as u64;
            }
            prop_assert_eq!(confirmed, total);
        }

        #[test]
        fn any_running_total_but_plus_n_or_a_resolvable_plus_2n_is_a_mismatch(
            confirmed in 0u64..5000, rows in 1u64..=1000, running in 0u64..8000, maybe: bool
        ) {
            let verdict = check_upload(&expect(confirmed, rows, maybe), &reply("T1", rows, running, 2500));
            let want = if running == confirmed + rows {
                Verdict::Confirmed { running }
            } else if maybe && running == confirmed + 2 * rows {
                Verdict::Duplicate { running }
            } else {
                mismatch("runningtotal", confirmed + rows, running)
            };
            prop_assert_eq!(verdict, want);
        }
    }

    #[test]
    fn chunks_from_an_offset_cover_the_rest() {
        let got: Vec<(usize, u64, usize)> = chunks_from(2000, 2500, 1000)
            .map(|c| (c.number, c.start, c.rows))
            .collect();
        assert_eq!(got, [(3, 2000, 500)]);
        assert_eq!(chunks_from(2500, 2500, 1000).count(), 0);
    }

    #[test]
    fn chunks_of_1001_rows_are_1000_and_1() {
        let sizes: Vec<usize> = chunks(1001, 1000).map(|c| c.rows).collect();
        assert_eq!(sizes, vec![1000, 1]);
        assert_eq!(chunks(0, 1000).count(), 0);
    }

    #[test]
    fn each_echo_is_checked() {
        let e = expect(1000, 1000, false);
        assert!(matches!(check_upload(&e, &reply("T2", 1000, 2000, 2500)),
            Verdict::Mismatch(m) if m.figure == "transactionid"));
        assert!(matches!(check_upload(&e, &reply("T1", 1000, 2000, 2600)),
            Verdict::Mismatch(m) if m.figure == "expectedtotal"));
        assert!(matches!(check_upload(&e, &reply("T1", 999, 2000, 2500)),
            Verdict::Mismatch(m) if m.figure == "uploadedtotal"));
        assert_eq!(
            check_upload(&e, &reply("T1", 1000, 2000, 2500)),
            Verdict::Confirmed { running: 2000 }
        );
    }

    #[test]
    fn a_doubled_chunk_is_a_duplicate_only_after_an_ambiguous_attempt() {
        let answer = reply("T1", 1000, 3000, 2500);
        assert_eq!(
            check_upload(&expect(1000, 1000, true), &answer),
            Verdict::Duplicate { running: 3000 }
        );
        assert!(matches!(
            check_upload(&expect(1000, 1000, false), &answer),
            Verdict::Mismatch(_)
        ));
    }
}
