//! Settings of the CRM.COM destination (docs/crm.md), from `[crm]`, checked: the URL (https unless
//! loopback), the password read from its reference, and the udf mapping with the spec's defaults.

use secrecy::SecretString;
use url::Url;

use super::{Config, ConfigError, Env, check_base_url};
use crate::crm::client::CrmLogin;
use crate::wire::Field;

/// Where a store's customers go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    RiderRewards,
    Crm,
}

impl Destination {
    /// Parses `rider-rewards` or `crm`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "rider-rewards" | "riderrewards" => Some(Destination::RiderRewards),
            "crm" | "crm.com" => Some(Destination::Crm),
            _ => None,
        }
    }
}

/// `[crm]`, resolved.
#[derive(Clone, Debug)]
pub struct CrmSettings {
    pub base_url: Url,
    pub login: CrmLogin,
    pub unit: String,
    pub classification: Option<String>,
    pub schemes: Vec<String>,
    pub accounts_receivable_column: Option<String>,
    pub access_token_field: Option<Field>,
    /// `udf_string_N` (1–8) and the customer field it holds, in N order.
    pub udf: Vec<(u8, Field)>,
    /// How long to wait for each answer.
    pub timeout: std::time::Duration,
    /// Status codes after which the client logs in again and retries once.
    pub reauth_codes: Vec<String>,
    /// The organisation's time zone: `sign_up_on` is its local date and time.
    pub timezone: jiff::tz::TimeZone,
}

impl CrmSettings {
    /// The `udf_string_N` slot that holds the PartnerCustomerID, if one does.
    pub fn id_slot(&self) -> Option<u8> {
        self.udf
            .iter()
            .find(|(_, field)| *field == Field::PartnerCustomerId)
            .map(|(slot, _)| *slot)
    }
}

/// The default mapping (docs/crm.md).
pub const DEFAULT_UDF: [(u8, Field); 4] = [
    (1, Field::PartnerCustomerId),
    (2, Field::RewardNumber),
    (3, Field::Email),
    (4, Field::MobilePhone),
];

impl Config {
    /// The CRM.COM settings.
    ///
    /// Fails when `[crm]` is missing, its URL is not usable, its password cannot be read, or the udf
    /// mapping names an unknown slot or field.
    pub fn crm(&self, env: Env) -> Result<CrmSettings, ConfigError> {
        let Some(crm) = &self.file.crm else {
            return Err(self.invalid(
                "[crm]",
                "is missing: CRM.COM needs its url, username, password, organisation and unit",
            ));
        };
        let base_url =
            check_base_url(&crm.url).map_err(|reason| self.invalid("crm.url", reason))?;
        let password: SecretString = self.secret(&crm.password, "crm.password", env)?;
        let field = |key: &str, name: &str| {
            Field::ALL
                .into_iter()
                .find(|f| f.name().eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    self.invalid(
                        key,
                        format!("{name:?} is not one of the 25 customer fields"),
                    )
                })
        };
        let udf = match &crm.udf {
            None => DEFAULT_UDF.to_vec(),
            Some(map) => {
                let mut udf = Vec::new();
                for (slot, name) in map {
                    let key = format!("crm.udf.{slot}");
                    let n = slot
                        .strip_prefix("udf_string_")
                        .and_then(|n| n.parse::<u8>().ok())
                        .filter(|n| (1..=8).contains(n))
                        .ok_or_else(|| {
                            self.invalid(&key, "slots are udf_string_1 … udf_string_8")
                        })?;
                    udf.push((n, field(&key, name)?));
                }
                udf.sort_by_key(|(n, _)| *n);
                udf
            }
        };
        let access_token_field = crm
            .access_token_field
            .as_deref()
            .map(|name| field("crm.access_token_field", name))
            .transpose()?;
        let timeout = self.duration(crm.timeout.as_deref(), "crm.timeout", "60s")?;
        let timezone = match crm.timezone.as_deref() {
            None => jiff::tz::TimeZone::system(),
            Some(name) => jiff::tz::TimeZone::get(name).map_err(|e| {
                self.invalid(
                    "crm.timezone",
                    format!("{name:?} is not a time zone ({e}); use an IANA name such as \"America/Chicago\""),
                )
            })?,
        };
        let reauth_codes = crm.reauth_codes.clone().unwrap_or_else(|| {
            crate::crm::client::DEFAULT_REAUTH_CODES
                .map(str::to_owned)
                .to_vec()
        });
        if reauth_codes.iter().any(|c| c.trim().is_empty()) {
            return Err(self.invalid("crm.reauth_codes", "a code is empty"));
        }
        Ok(CrmSettings {
            timeout,
            reauth_codes,
            timezone,
            base_url,
            login: CrmLogin {
                username: crm.username.clone(),
                password,
                organisation: crm.organisation.clone(),
            },
            unit: crm.unit.clone(),
            classification: crm.classification.clone(),
            schemes: crm.schemes.clone(),
            accounts_receivable_column: crm.accounts_receivable_column.clone(),
            access_token_field,
            udf,
        })
    }

    /// A configured store's destination (Rider Rewards unless it says `crm`).
    ///
    /// Fails on an unknown destination name.
    pub fn destination_of(&self, store: &str) -> Result<Destination, ConfigError> {
        let configured = self
            .file
            .stores
            .iter()
            .find(|s| s.name == store)
            .and_then(|s| s.destination.as_deref());
        match configured {
            None => Ok(Destination::RiderRewards),
            Some(name) => Destination::from_name(name).ok_or_else(|| {
                self.invalid(
                    format!("store {store}: destination"),
                    format!("{name:?} is neither \"rider-rewards\" nor \"crm\""),
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load(text: &str) -> (tempfile::NamedTempFile, Config) {
        let mut file = tempfile::NamedTempFile::with_suffix(".toml").unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let config = Config::load(Some(file.path())).unwrap();
        (file, config)
    }

    const CRM: &str = "[crm]\nurl = \"https://crm.example.com/crmapi/rest/v2\"\nusername = \"rrfeed\"\n\
        password = { env = \"CRM_PASSWORD\" }\norganisation = \"DEALERS\"\nunit = \"Dealer Sales\"\n";

    #[test]
    fn crm_settings_resolve_with_the_default_udf_mapping() {
        let (_f, config) = load(CRM);
        let env = |k: &str| (k == "CRM_PASSWORD").then(|| "pw".to_owned());
        let crm = config.crm(&env).unwrap();
        assert_eq!(
            crm.base_url.as_str(),
            "https://crm.example.com/crmapi/rest/v2"
        );
        assert_eq!(crm.udf, DEFAULT_UDF.to_vec());
        assert_eq!(crm.login.organisation, "DEALERS");
    }

    #[test]
    fn a_udf_mapping_names_slots_and_fields() {
        let text = format!(
            "{CRM}access_token_field = \"CustomerRewardNumber\"\n[crm.udf]\nudf_string_2 = \"CustomerEmail\"\nudf_string_1 = \"PartnerCustomerID\"\n"
        );
        let (_f, config) = load(&text);
        let env = |_: &str| Some("pw".to_owned());
        let crm = config.crm(&env).unwrap();
        assert_eq!(crm.udf, [(1, Field::PartnerCustomerId), (2, Field::Email)]);
        assert_eq!(crm.access_token_field, Some(Field::RewardNumber));
        let (_f, bad) = load(&format!(
            "{CRM}[crm.udf]\nudf_string_9 = \"CustomerEmail\"\n"
        ));
        let err = bad.crm(&env).unwrap_err().to_string();
        assert!(err.contains("crm.udf.udf_string_9"), "{err}");
        let (_f, bad) = load(&format!("{CRM}[crm.udf]\nudf_string_1 = \"Shoe Size\"\n"));
        assert!(bad.crm(&env).unwrap_err().to_string().contains("Shoe Size"));
    }

    #[test]
    fn the_shipped_example_configures_crm() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/rrfeed.example.toml");
        let config = Config::load(Some(&path)).unwrap();
        let env = |k: &str| (k == "RRFEED_CRM_PASSWORD").then(|| "pw".to_owned());
        let crm = config.crm(&env).unwrap();
        assert_eq!(crm.udf, DEFAULT_UDF.to_vec());
        assert_eq!(crm.schemes, ["Rider Rewards"]);
        assert_eq!(
            config.destination_of("oak-creek").unwrap(),
            Destination::RiderRewards
        );
    }

    #[test]
    fn a_store_chooses_its_destination() {
        let text = "[[store]]\nname = \"north\"\nstore_id = \"1\"\nstore_api_key = { env = \"K\" }\ndestination = \"crm\"\n\
                    [[store]]\nname = \"south\"\nstore_id = \"2\"\nstore_api_key = { env = \"K\" }\n\
                    [[store]]\nname = \"east\"\nstore_id = \"3\"\nstore_api_key = { env = \"K\" }\ndestination = \"elsewhere\"\n";
        let (_f, config) = load(text);
        assert_eq!(config.destination_of("north").unwrap(), Destination::Crm);
        assert_eq!(
            config.destination_of("south").unwrap(),
            Destination::RiderRewards
        );
        assert!(
            config
                .destination_of("east")
                .unwrap_err()
                .to_string()
                .contains("elsewhere")
        );
    }

    #[test]
    fn plain_http_is_refused_for_a_remote_crm() {
        let (_f, config) = load(&CRM.replace("https://crm.example.com", "http://crm.example.com"));
        let env = |_: &str| Some("pw".to_owned());
        assert!(
            config
                .crm(&env)
                .unwrap_err()
                .to_string()
                .contains("crm.url")
        );
    }
}
