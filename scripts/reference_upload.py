#!/usr/bin/env python3
"""The obvious plain uploader, for scripts/bench's CPU comparison: csv + json + urllib, no normalization,
no checks beyond the vendor's running total. Reads a CSV written by `gen_customers` and uploads it to the
Rider Rewards API at URL (the mock) in one transaction.

    python3 scripts/reference_upload.py URL customers.csv
"""

import csv, json, os, sys, urllib.request

COLUMNS = {  # export header -> wire field; the other fields are sent empty
    "Customer ID": "PartnerCustomerID", "Rewards Number": "CustomerRewardNumber",
    "First Name": "CustomerFirstName", "Last Name": "CustomerLastName", "Address": "CustomerAddress",
    "City": "CustomerCity", "State": "CustomerStateProvince", "Zip": "CustomerZipOrPostalCode",
    "Country": "CustomerCountry", "Mobile": "CustomerMobilePhone", "Home Phone": "CustomerHomePhone",
    "Gender": "CustomerGender", "E-mail": "CustomerEmail", "HOG Number": "CustomerNationalHOGNumber",
    "Local HOG Member": "CustomerIsLocalHOGChapterMember",
}
FIELDS = ["PartnerCustomerID", "CustomerRewardNumber", "CustomerFirstName", "CustomerLastName",
          "CustomerAddress", "CustomerCity", "CustomerStateProvince", "CustomerZipOrPostalCode",
          "CustomerCountry", "CustomerBirthMonth", "CustomerBirthDay", "CustomerBirthYear",
          "CustomerPrimaryPhoneType", "CustomerMobilePhone", "CustomerHomePhone", "CustomerWorkPhone",
          "CustomerClass", "CustomerClubName", "CustomerGender", "CustomerEmail",
          "CustomerNationalHOGNumber", "CustomerNationalHOGExpireMonth", "CustomerNationalHOGExpireDate",
          "CustomerNationalHOGExpireYear", "CustomerIsLocalHOGChapterMember"]

url, path = sys.argv[1], sys.argv[2]
store = os.environ.get("RRFEED_STORE_ID", "1001")
partner_store = os.environ.get("RRFEED_PARTNER_STORE_ID", "DEMO-1")
headers = {"Content-Type": "application/json", "RRStoreID": store,
           "PartnerAPIKey": os.environ.get("RRFEED_PARTNER_API_KEY", "demo-partner-key"),
           "RRStoreAPIKey": os.environ.get("RRFEED_STORE_API_KEY", "demo-store-key")}


def call(endpoint, body, extra=None):
    request = urllib.request.Request(url + "/" + endpoint, json.dumps(body).encode(),
                                     {**headers, **(extra or {})}, method="POST")
    with urllib.request.urlopen(request) as answer:
        results = json.load(answer)["results"]
    if results.get("message") != "Success":
        sys.exit(f"{endpoint}: {results}")
    return results


with open(path, newline="", encoding="utf-8-sig") as f:
    rows = [{field: row.get(column) or "" for column, field in COLUMNS.items()} for row in csv.DictReader(f)]
for row in rows:
    for field in FIELDS:
        row.setdefault(field, "")
summary = {"partnertransactionid": "reference", "partnerstoreid": partner_store, "RRStoreID": store,
           "feedtype": "C", "startdate": None, "enddate": None}
call("readyfeedupload", {"feedtype": "C"})
txid = call("begintransaction", {"transactionsummary": {**summary, "expectedtotal": str(len(rows))}})["transactionid"]
for start in range(0, len(rows), 1000):
    chunk = rows[start:start + 1000]
    body = {"transactionsummary": {**summary, "transactionid": txid, "totalrowssent": str(len(chunk))}, "rows": chunk}
    results = call("uploadcustomerprofile", body, {"transactionid": txid})
    if int(results["runningtotal"]) != start + len(chunk):
        sys.exit(f"running total {results['runningtotal']} after {start + len(chunk)} rows")
end = dict(summary)
del end["RRStoreID"]
call("endtransaction", {"transactionsummary": {**end, "transactionid": txid}}, {"transactionid": txid})
print(json.dumps({"rows": len(rows)}))
