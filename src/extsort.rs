//! Sorting more records than memory should hold: records gather in a run until it reaches a byte
//! budget, then the run is sorted and spilled to an anonymous temporary file; at the end every run is
//! merged through a heap, one record of each run in memory — or, when the runs do not overlap (an
//! export already in id order), read one after another. The change report uses it, so that a million
//! customers cost a few MiB of memory and some temporary disk; the repeated-id check
//! ([`crate::repeats`]) sorts its own keys the same way and reads its runs with [`read_or_end`].

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};

/// Bytes buffered for each spilled run while they are merged: a million customers make a few
/// dozen runs, all open at once.
const MERGE_BUFFER: usize = 1 << 14;

/// A record that can be sorted on disk.
pub trait Spill: Ord + Clone + Sized {
    /// About how many bytes the record holds in memory, its own size included.
    fn size(&self) -> usize;
    /// Writes the record to a spilled run.
    fn write_to(&self, out: &mut impl Write) -> io::Result<()>;
    /// Reads the next record of a spilled run; `None` at its end.
    fn read_from(input: &mut impl BufRead) -> io::Result<Option<Self>>;
}

/// Collects records, spilling sorted runs to disk past the budget.
pub struct ExternalSort<T> {
    run: Vec<T>,
    bytes: usize,
    budget: usize,
    spilled: Vec<File>,
    /// The greatest record spilled so far, while every run began after the one before ended.
    ordered_up_to: Option<T>,
    ordered: bool,
}

impl<T: Spill> ExternalSort<T> {
    /// A sort that keeps about `budget` bytes of records in memory.
    pub fn new(budget: usize) -> Self {
        // Sized once: a run holds at most this many records, and a doubling Vec would overshoot the
        // budget by up to half.
        let most = budget / std::mem::size_of::<T>().max(1) + 1;
        Self {
            run: Vec::with_capacity(most),
            bytes: 0,
            budget,
            spilled: Vec::new(),
            ordered_up_to: None,
            ordered: true,
        }
    }

    /// Sorts the run in memory and notes whether it begins after every run before it.
    fn sort_run(&mut self) {
        self.run.sort_unstable();
        if let (Some(first), Some(last)) = (self.run.first(), self.run.last()) {
            self.ordered &= self.ordered_up_to.as_ref().is_none_or(|end| end < first);
            self.ordered_up_to = Some(last.clone());
        }
    }

    /// Adds a record.
    ///
    /// Fails when a full run cannot be spilled to a temporary file.
    pub fn push(&mut self, record: T) -> io::Result<()> {
        self.bytes += record.size();
        self.run.push(record);
        if self.bytes >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    fn spill(&mut self) -> io::Result<()> {
        self.sort_run();
        let mut out = BufWriter::with_capacity(1 << 16, tempfile::tempfile()?);
        for record in self.run.drain(..) {
            record.write_to(&mut out)?;
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        self.spilled.push(file);
        self.bytes = 0;
        Ok(())
    }

    /// Every record pushed, in order.
    ///
    /// Fails when the first record of a spilled run cannot be read back.
    pub fn sorted(mut self) -> io::Result<Sorted<T>> {
        self.sort_run();
        let mut sources: Vec<Source<T>> = self
            .spilled
            .into_iter()
            .map(|f| Source::File(BufReader::with_capacity(MERGE_BUFFER, f)))
            .collect();
        sources.push(Source::Memory(std::mem::take(&mut self.run).into_iter()));
        if self.ordered {
            return Ok(Sorted::Chain(sources.into()));
        }
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, source) in sources.iter_mut().enumerate() {
            if let Some(record) = source.next()? {
                heap.push(Reverse((record, i)));
            }
        }
        Ok(Sorted::Heap { sources, heap })
    }
}

/// The runs of an [`ExternalSort`] in order, read one record at a time.
pub enum Sorted<T> {
    /// Runs that overlap, merged through a heap holding the next record of each.
    Heap {
        sources: Vec<Source<T>>,
        heap: BinaryHeap<Reverse<(T, usize)>>,
    },
    /// Runs each after the one before, read in turn.
    Chain(VecDeque<Source<T>>),
}

impl<T: Spill> Sorted<T> {
    /// The next record in order; `None` after the last.
    ///
    /// Fails when a spilled run cannot be read back.
    pub fn next_record(&mut self) -> io::Result<Option<T>> {
        match self {
            Sorted::Heap { sources, heap } => {
                let Some(Reverse((record, i))) = heap.pop() else {
                    return Ok(None);
                };
                if let Some(next) = sources[i].next()? {
                    heap.push(Reverse((next, i)));
                }
                Ok(Some(record))
            }
            Sorted::Chain(sources) => {
                while let Some(source) = sources.front_mut() {
                    if let Some(record) = source.next()? {
                        return Ok(Some(record));
                    }
                    sources.pop_front();
                }
                Ok(None)
            }
        }
    }
}

/// One sorted run being read.
pub enum Source<T> {
    File(BufReader<File>),
    Memory(std::vec::IntoIter<T>),
}

impl<T: Spill> Source<T> {
    fn next(&mut self) -> io::Result<Option<T>> {
        match self {
            Source::Memory(records) => Ok(records.next()),
            Source::File(file) => T::read_from(file),
        }
    }
}

/// Reads exactly `buf.len()` bytes, or nothing at the end of the input: `Ok(false)` then.
///
/// Fails on a read error or an input that ends inside `buf`.
pub fn read_or_end(input: &mut impl BufRead, buf: &mut [u8]) -> io::Result<bool> {
    let available = input.fill_buf()?;
    if available.is_empty() {
        return Ok(false);
    }
    if let Some(bytes) = available.get(..buf.len()) {
        buf.copy_from_slice(bytes);
        input.consume(buf.len());
        return Ok(true);
    }
    input.read_exact(buf).map(|()| true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct Number(u32);

    impl Spill for Number {
        fn size(&self) -> usize {
            4
        }
        fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
            out.write_all(&self.0.to_le_bytes())
        }
        fn read_from(input: &mut impl BufRead) -> io::Result<Option<Self>> {
            let mut b = [0; 4];
            Ok(read_or_end(input, &mut b)?.then(|| Number(u32::from_le_bytes(b))))
        }
    }

    fn sort(numbers: &[u32], budget: usize) -> Vec<u32> {
        let mut sort = ExternalSort::new(budget);
        for n in numbers {
            sort.push(Number(*n)).unwrap();
        }
        let mut sorted = sort.sorted().unwrap();
        let mut out = Vec::new();
        while let Some(Number(n)) = sorted.next_record().unwrap() {
            out.push(n);
        }
        out
    }

    #[test]
    fn an_input_that_ends_inside_a_record_is_an_error() {
        let mut input: &[u8] = &[1, 2];
        assert!(Number::read_from(&mut input).is_err());
        let mut empty: &[u8] = &[];
        assert!(Number::read_from(&mut empty).unwrap().is_none());
    }

    #[test]
    fn runs_already_in_order_are_chained_and_overlapping_ones_merged() {
        let ordered: Vec<u32> = (0..100).collect();
        let mut sort = ExternalSort::new(40);
        ordered.iter().for_each(|n| sort.push(Number(*n)).unwrap());
        assert!(matches!(sort.sorted().unwrap(), Sorted::Chain(_)));
        assert_eq!(self::sort(&ordered, 40), ordered);
        let mut sort = ExternalSort::new(40);
        ordered
            .iter()
            .rev()
            .for_each(|n| sort.push(Number(*n)).unwrap());
        assert!(matches!(sort.sorted().unwrap(), Sorted::Heap { .. }));
    }

    proptest! {
        #[test]
        fn spilled_or_not_the_records_come_back_sorted(
            numbers in proptest::collection::vec(0u32..1000, 0..300),
            budget in 4usize..400,
        ) {
            let mut expected = numbers.clone();
            expected.sort_unstable();
            prop_assert_eq!(sort(&numbers, budget), expected);
        }
    }
}
