//! Generates a realistic, messy customer export of N rows, the same for the same seed: phones with
//! punctuation, "Male"/"female", mixed-case emails, quoted commas and line breaks, accented names,
//! a few values that cannot be normalized and a few repeated customer ids. For benchmarks, and for
//! partners who want to try their setup on a large file.
//!
//! ```sh
//! cargo run --release --example gen_customers -- --rows 100000 --format csv --seed 7 > customers.csv
//! cargo run --release --example gen_customers -- --rows 100000 --format ndjson --out customers.ndjson
//! cargo run --release --example gen_customers -- --rows 50000 --format xlsx --out customers.xlsx
//! ```

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

#[derive(Parser)]
#[command(about = "Writes a deterministic, messy customer export for testing rrfeed")]
struct Args {
    /// How many customers
    #[arg(long, default_value_t = 1000)]
    rows: u64,
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// The same seed gives the same file
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write here instead of stdout
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Csv,
    Ndjson,
    /// An Excel workbook as Excel saves one: text in the shared table, ZIP codes as numbers, ISO birth
    /// dates as date cells.
    Xlsx,
}

const FIRST: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Zoë",
    "José",
    "Renée",
    "Björn",
    "Chloé",
    "Dale",
    "Rusty",
    "Wade",
    "Buck",
    "Sean",
];
const LAST: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Moore",
    "O'Brien",
    "Müller",
    "Nuñez",
    "Van Der Berg",
    "McAllister",
    "Kowalski",
];
const STREETS: &[&str] = &[
    "Main St",
    "Oak Ave",
    "N Water St",
    "W Northbranch Dr",
    "Harley Way",
    "Lakeshore Dr",
    "Elm St",
    "Capitol Dr",
    "Highway 100",
    "County Rd K",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Milwaukee", "WI", "532"),
    ("Oak Creek", "WI", "531"),
    ("Madison", "WI", "537"),
    ("Chicago", "IL", "606"),
    ("Minneapolis", "MN", "554"),
    ("Des Moines", "IA", "503"),
];
const GENDERS: &[&str] = &[
    "Male", "male", "M", "m", "Female", "female", "F", "f", "", "Unknown",
];
const COUNTRIES: &[&str] = &["US", "USA", "United States", "us", ""];
const DOMAINS: &[&str] = &[
    "gmail.com",
    "Yahoo.com",
    "HOTMAIL.COM",
    "example.net",
    "att.net",
];
const HEADER: [&str; 17] = [
    "Customer ID",
    "Rewards Number",
    "First Name",
    "Last Name",
    "Address",
    "City",
    "State",
    "Zip",
    "Country",
    "Birth Date",
    "Mobile",
    "Home Phone",
    "Gender",
    "E-mail",
    "HOG Number",
    "Local HOG Member",
    "Notes",
];

fn pick<'a>(rng: &mut fastrand::Rng, items: &[&'a str]) -> &'a str {
    items[rng.usize(..items.len())]
}

fn phone(rng: &mut fastrand::Rng) -> String {
    let (a, b, c) = (rng.u32(200..990), rng.u32(200..1000), rng.u32(0..10_000));
    match rng.u8(0..10) {
        0 => format!("({a}) {b}-{c:04}"),
        1 | 2 => format!("{a}-{b}-{c:04}"),
        3 => format!("{a}.{b}.{c:04}"),
        4 => format!("+1 {a} {b} {c:04}"),
        5 => format!("{a}{b}{c:04}"),
        6 if rng.u8(0..10) == 0 => "n/a".into(),
        _ => String::new(),
    }
}

/// One customer's 17 column values.
fn customer(rng: &mut fastrand::Rng, i: u64) -> [String; 17] {
    let (first, last) = (pick(rng, FIRST), pick(rng, LAST));
    let (city, state, zip) = CITIES[rng.usize(..CITIES.len())];
    let mut address = format!("{} {}", rng.u32(1..10_000), pick(rng, STREETS));
    if rng.u8(0..8) == 0 {
        address.push_str(&format!(", Apt {}", rng.u8(1..40)));
    }
    if rng.u16(0..200) == 0 {
        address.push_str(&format!("\r\nSuite {}", rng.u16(100..300)));
    }
    let (y, m, d) = (rng.u16(1940..2005), rng.u8(1..13), rng.u8(1..29));
    let birth = match rng.u8(0..5) {
        0 => format!("{m:02}/{d:02}/{y}"),
        1 => format!("{m}/{d}/{y}"),
        2 => format!("{y}-{m:02}-{d:02}"),
        3 => format!("{m}/{d}/{y} 12:00:00 AM"),
        _ => String::new(),
    };
    let email = match rng.u8(0..20) {
        0 => "none".into(),
        1 | 2 => String::new(),
        n => {
            let e = format!("{first}.{last}@{}", pick(rng, DOMAINS)).replace([' ', '\''], "");
            if n % 3 == 0 { e.to_uppercase() } else { e }
        }
    };
    let hog = rng.u8(0..10) < 4;
    // Every 5000th customer repeats the id of the one before, as real exports sometimes do.
    let id = if i % 5000 == 4999 { i - 1 } else { i };
    [
        format!("C{:08}", id),
        if rng.bool() {
            format!("RR{}", rng.u32(100_000..1_000_000))
        } else {
            String::new()
        },
        first.to_owned(),
        last.to_owned(),
        address,
        city.to_owned(),
        state.to_owned(),
        format!("{zip}{:02}", rng.u8(0..100)),
        pick(rng, COUNTRIES).to_owned(),
        birth,
        phone(rng),
        phone(rng),
        pick(rng, GENDERS).to_owned(),
        email,
        if hog {
            rng.u32(1_000_000..10_000_000).to_string()
        } else {
            String::new()
        },
        if hog {
            pick(rng, &["Yes", "No", "Y", "N", "true"]).to_owned()
        } else {
            String::new()
        },
        pick(
            rng,
            &[
                "",
                "",
                "",
                "Prefers text",
                "Bought \"Road King\" 2019",
                "Call, not email",
            ],
        )
        .to_owned(),
    ]
}

fn write_csv(out: &mut dyn Write, args: &Args, rng: &mut fastrand::Rng) -> std::io::Result<()> {
    out.write_all(b"\xEF\xBB\xBF")?;
    let mut csv = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out);
    csv.write_record(HEADER)?;
    for i in 0..args.rows {
        csv.write_record(customer(rng, i))?;
    }
    csv.flush()
}

fn write_ndjson(out: &mut dyn Write, args: &Args, rng: &mut fastrand::Rng) -> std::io::Result<()> {
    for i in 0..args.rows {
        let values = customer(rng, i);
        let object: serde_json::Map<String, serde_json::Value> = HEADER
            .iter()
            .zip(values)
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
            .collect();
        serde_json::to_writer(&mut *out, &object)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn write_xlsx(out: &mut dyn Write, args: &Args, rng: &mut fastrand::Rng) -> std::io::Result<()> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let failed = |e: rust_xlsxwriter::XlsxError| std::io::Error::other(e.to_string());
    let mut workbook = Workbook::new();
    let dates = Format::new().set_num_format("mm/dd/yyyy");
    let sheet = workbook
        .add_worksheet()
        .set_name("Customers")
        .map_err(failed)?;
    for (column, name) in HEADER.iter().enumerate() {
        sheet
            .write_string(0, column as u16, *name)
            .map_err(failed)?;
    }
    for i in 0..args.rows {
        let row = i as u32 + 1;
        for (column, value) in customer(rng, i).iter().enumerate() {
            let column = column as u16;
            let iso = (value.len() == 10 && &value[4..5] == "-")
                .then(|| ExcelDateTime::parse_from_str(value).ok())
                .flatten();
            if value.is_empty() {
                continue;
            } else if let Some(date) = iso {
                sheet.write_datetime_with_format(row, column, date, &dates)
            } else if HEADER[column as usize] == "Zip"
                && let Ok(zip) = value.parse::<u32>()
            {
                sheet.write_number(row, column, zip)
            } else {
                sheet.write_string(row, column, value)
            }
            .map_err(failed)?;
        }
    }
    out.write_all(&workbook.save_to_buffer().map_err(failed)?)
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let mut rng = fastrand::Rng::with_seed(args.seed);
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::fs::File::create(path)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 20, &mut out);
    match args.format {
        Format::Csv => write_csv(&mut out, &args, &mut rng)?,
        Format::Ndjson => write_ndjson(&mut out, &args, &mut rng)?,
        Format::Xlsx => write_xlsx(&mut out, &args, &mut rng)?,
    }
    out.flush()
}
