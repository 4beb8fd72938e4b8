//! A plain Rust uploader, for `scripts/bench`'s CPU comparison: the csv crate, serde_json and reqwest,
//! one call after another, no normalization and no checks beyond the vendor's running total. Rows are
//! kept as their 25 values in wire order and serialized straight from them (no `serde_json::Value` per
//! row, which costs ten times as much). Reads a CSV written by `gen_customers` and uploads it in one
//! transaction. It uses nothing of rrfeed.
//!
//! ```sh
//! cargo run --release --example plain_upload -- http://127.0.0.1:8080 customers.csv
//! ```

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value, json};

/// Export header → wire field; the other fields are sent empty.
const COLUMNS: [(&str, &str); 15] = [
    ("Customer ID", "PartnerCustomerID"),
    ("Rewards Number", "CustomerRewardNumber"),
    ("First Name", "CustomerFirstName"),
    ("Last Name", "CustomerLastName"),
    ("Address", "CustomerAddress"),
    ("City", "CustomerCity"),
    ("State", "CustomerStateProvince"),
    ("Zip", "CustomerZipOrPostalCode"),
    ("Country", "CustomerCountry"),
    ("Mobile", "CustomerMobilePhone"),
    ("Home Phone", "CustomerHomePhone"),
    ("Gender", "CustomerGender"),
    ("E-mail", "CustomerEmail"),
    ("HOG Number", "CustomerNationalHOGNumber"),
    ("Local HOG Member", "CustomerIsLocalHOGChapterMember"),
];

const FIELDS: [&str; 25] = [
    "PartnerCustomerID",
    "CustomerRewardNumber",
    "CustomerFirstName",
    "CustomerLastName",
    "CustomerAddress",
    "CustomerCity",
    "CustomerStateProvince",
    "CustomerZipOrPostalCode",
    "CustomerCountry",
    "CustomerBirthMonth",
    "CustomerBirthDay",
    "CustomerBirthYear",
    "CustomerPrimaryPhoneType",
    "CustomerMobilePhone",
    "CustomerHomePhone",
    "CustomerWorkPhone",
    "CustomerClass",
    "CustomerClubName",
    "CustomerGender",
    "CustomerEmail",
    "CustomerNationalHOGNumber",
    "CustomerNationalHOGExpireMonth",
    "CustomerNationalHOGExpireDate",
    "CustomerNationalHOGExpireYear",
    "CustomerIsLocalHOGChapterMember",
];

/// A post: the summary and up to 1000 rows, serialized as they are.
#[derive(serde::Serialize)]
struct Post<'a> {
    transactionsummary: &'a Value,
    rows: &'a [Row],
}

/// One customer: its 25 values in the order of `FIELDS`.
struct Row(Vec<String>);

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(FIELDS.len()))?;
        for (field, value) in FIELDS.iter().zip(&self.0) {
            map.serialize_entry(field, value)?;
        }
        map.end()
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

struct Api {
    http: reqwest::Client,
    url: String,
    store: String,
}

impl Api {
    async fn call(
        &self,
        endpoint: &str,
        body: &impl Serialize,
        txid: Option<&str>,
    ) -> Map<String, Value> {
        let mut request = self
            .http
            .post(format!("{}/{endpoint}", self.url))
            .header(
                "PartnerAPIKey",
                env_or("RRFEED_PARTNER_API_KEY", "demo-partner-key"),
            )
            .header(
                "RRStoreAPIKey",
                env_or("RRFEED_STORE_API_KEY", "demo-store-key"),
            )
            .header("RRStoreID", &self.store)
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(body).unwrap());
        if let Some(txid) = txid {
            request = request.header("transactionid", txid);
        }
        let answer: Value =
            serde_json::from_slice(&request.send().await.unwrap().bytes().await.unwrap())
                .expect("a JSON answer");
        let results = answer["results"].as_object().expect("results").clone();
        assert_eq!(
            results.get("message"),
            Some(&json!("Success")),
            "{endpoint}: {answer}"
        );
        results
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (url, path) = (&args[1], &args[2]);
    let mut reader = csv::Reader::from_path(path).expect("a CSV file");
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    // For each column, the index of its field in `FIELDS`.
    let columns: Vec<Option<usize>> = header
        .iter()
        .map(|h| {
            let field = COLUMNS.iter().find(|(c, _)| c == h)?.1;
            FIELDS.iter().position(|f| *f == field)
        })
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.expect("a CSV record");
        let mut row = vec![String::new(); FIELDS.len()];
        for (value, field) in record.iter().zip(&columns) {
            if let Some(i) = field {
                row[*i] = value.to_owned();
            }
        }
        rows.push(Row(row));
    }
    let store = env_or("RRFEED_STORE_ID", "1001");
    let summary = json!({
        "partnertransactionid": "plain", "partnerstoreid": env_or("RRFEED_PARTNER_STORE_ID", "DEMO-1"),
        "RRStoreID": store, "feedtype": "C", "startdate": null, "enddate": null,
    });
    let api = Api {
        http: reqwest::Client::new(),
        url: url.clone(),
        store: store.clone(),
    };
    api.call("readyfeedupload", &json!({"feedtype": "C"}), None)
        .await;
    let mut begin = summary.clone();
    begin["expectedtotal"] = json!(rows.len().to_string());
    let txid = api
        .call(
            "begintransaction",
            &json!({ "transactionsummary": begin }),
            None,
        )
        .await["transactionid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut sent = 0;
    for chunk in rows.chunks(1000) {
        let mut post = summary.clone();
        post["transactionid"] = json!(txid);
        post["totalrowssent"] = json!(chunk.len().to_string());
        let body = Post {
            transactionsummary: &post,
            rows: chunk,
        };
        let results = api.call("uploadcustomerprofile", &body, Some(&txid)).await;
        sent += chunk.len();
        let running = &results["runningtotal"];
        assert_eq!(
            running.as_str(),
            Some(sent.to_string().as_str()),
            "running total"
        );
    }
    let mut end = summary.clone();
    end.as_object_mut().unwrap().remove("RRStoreID");
    end["transactionid"] = json!(txid);
    api.call(
        "endtransaction",
        &json!({ "transactionsummary": end }),
        Some(&txid),
    )
    .await;
    println!("{{\"rows\":{}}}", rows.len());
}
