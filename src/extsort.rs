//! Sorting more records than memory should hold: records gather in a run until it reaches a byte
//! budget, then the run is sorted and spilled to an anonymous temporary file; at the end every run is
//! merged through a heap, one record of each run in memory. The repeated-id check and the change report
//! use it, so that a million customers cost a few MiB of memory and some temporary disk.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

/// A record that can be sorted on disk.
pub trait Spill: Ord + Sized {
    /// About how many bytes the record holds in memory, its own size included.
    fn size(&self) -> usize;
    /// Writes the record to a spilled run.
    fn write_to(&self, out: &mut impl Write) -> io::Result<()>;
    /// Reads the next record of a spilled run; `None` at its end.
    fn read_from(input: &mut impl Read) -> io::Result<Option<Self>>;
}

/// Collects records, spilling sorted runs to disk past the budget.
pub struct ExternalSort<T> {
    run: Vec<T>,
    bytes: usize,
    budget: usize,
    spilled: Vec<File>,
}

impl<T: Spill> ExternalSort<T> {
    /// A sort that keeps about `budget` bytes of records in memory.
    pub fn new(budget: usize) -> Self {
        Self {
            run: Vec::new(),
            bytes: 0,
            budget,
            spilled: Vec::new(),
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
        self.run.sort_unstable();
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
        self.run.sort_unstable();
        let mut sources: Vec<Source<T>> = self
            .spilled
            .into_iter()
            .map(|f| Source::File(BufReader::with_capacity(1 << 14, f)))
            .collect();
        sources.push(Source::Memory(std::mem::take(&mut self.run).into_iter()));
        let mut heap = BinaryHeap::with_capacity(sources.len());
        for (i, source) in sources.iter_mut().enumerate() {
            if let Some(record) = source.next()? {
                heap.push(Reverse((record, i)));
            }
        }
        Ok(Sorted { sources, heap })
    }
}

/// The merged runs of an [`ExternalSort`], read one record at a time.
pub struct Sorted<T> {
    sources: Vec<Source<T>>,
    heap: BinaryHeap<Reverse<(T, usize)>>,
}

impl<T: Spill> Sorted<T> {
    /// The next record in order; `None` after the last.
    ///
    /// Fails when a spilled run cannot be read back.
    pub fn next_record(&mut self) -> io::Result<Option<T>> {
        let Some(Reverse((record, i))) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some(next) = self.sources[i].next()? {
            self.heap.push(Reverse((next, i)));
        }
        Ok(Some(record))
    }
}

/// One sorted run being merged.
enum Source<T> {
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
pub fn read_or_end(input: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
    struct Number(u32);

    impl Spill for Number {
        fn size(&self) -> usize {
            4
        }
        fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
            out.write_all(&self.0.to_le_bytes())
        }
        fn read_from(input: &mut impl Read) -> io::Result<Option<Self>> {
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
