//! A `[mapping]` table of `rrfeed.toml`, checked and turned into the mapping's own rules: the mapping
//! module knows nothing of the config file.

use crate::dates::DateOrder;
use crate::mapping::{MappingRules, Target, field_named, header_key, unknown_field};

use super::file::MappingConfig;

/// Checks a `[mapping]` table and turns it into the mapping's own rules. Fails naming the key (e.g. `mapping.columns."Cell #"`) and the problem.
pub fn rules(config: &MappingConfig) -> Result<MappingRules, (String, String)> {
    let mut rules = MappingRules::default();
    for (header, target) in &config.columns {
        let target =
            if target.eq_ignore_ascii_case("ignore") {
                Target::Ignore
            } else {
                Target::Field(field_named(target).ok_or_else(|| {
                    (format!("mapping.columns.{header:?}"), unknown_field(target))
                })?)
            };
        rules.columns.insert(header_key(header), target);
    }
    if let Some(birth) = &config.birth_date {
        rules
            .columns
            .insert(header_key(&birth.column), Target::BirthDate);
        if let Some(format) = &birth.format {
            // A format must both print and read back a whole date.
            let probe = jiff::civil::datetime(2001, 2, 3, 4, 5, 6, 0);
            let round_trip = jiff::fmt::strtime::format(format, probe)
                .and_then(|text| jiff::fmt::strtime::parse(format, text))
                .and_then(|tm| tm.to_date());
            if round_trip.is_err() {
                return Err((
                    "mapping.birth_date.format".into(),
                    format!("{format:?} is not a date format such as \"%d.%m.%Y\""),
                ));
            }
        }
        rules.birth_date_format.clone_from(&birth.format);
    }
    if let Some(name) = &config.full_name {
        rules
            .columns
            .insert(header_key(&name.column), Target::FullName);
        rules.last_name_first = match name.order.as_deref() {
            None | Some("first_last") => false,
            Some("last_first") => true,
            Some(other) => {
                return Err((
                    "mapping.full_name.order".into(),
                    format!("{other:?} is neither \"first_last\" nor \"last_first\""),
                ));
            }
        };
    }
    if let Some(order) = &config.date_order {
        rules.date_order = Some(DateOrder::from_name(order).ok_or_else(|| {
            (
                "mapping.date_order".to_owned(),
                format!("{order:?} is neither \"dmy\" nor \"mdy\""),
            )
        })?);
    }
    rules.allow_missing_id = config.allow_missing_id;
    for (field, value) in &config.defaults {
        let f = field_named(field)
            .ok_or_else(|| (format!("mapping.defaults.{field}"), unknown_field(field)))?;
        rules.defaults.push((f, value.clone()));
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::ColumnMap;
    use crate::wire::Field;

    #[test]
    fn a_configured_mapping_beats_names_and_aliases() {
        let config: MappingConfig = toml::from_str(
            r#"
            columns = { "Cell #" = "CustomerMobilePhone", "Email" = "ignore", "Contact" = "customeremail" }
            birth_date = { column = "Born", format = "%d.%m.%Y" }
            defaults = { CustomerCountry = "USA" }
            "#,
        )
        .unwrap();
        let rules = rules(&config).unwrap();
        let map = ColumnMap::from_headers(&["cell #", "Email", "Contact", "Born"], &rules);
        assert_eq!(
            map.targets,
            [
                Target::Field(Field::MobilePhone),
                Target::Ignore,
                Target::Field(Field::Email),
                Target::BirthDate
            ]
        );
        assert!(map.unknown.is_empty(), "ignored on purpose is not unknown");
        assert_eq!(rules.defaults, [(Field::Country, "USA".to_owned())]);
    }

    #[test]
    fn a_mapping_to_an_unknown_field_names_the_key() {
        let config: MappingConfig =
            toml::from_str(r#"columns = { "Cell" = "MobilePhone" }"#).unwrap();
        let (key, reason) = rules(&config).unwrap_err();
        assert_eq!(key, "mapping.columns.\"Cell\"");
        assert!(reason.contains("not one of the 25"), "{reason}");
        let config: MappingConfig =
            toml::from_str(r#"birth_date = { column = "DOB", format = "%Q" }"#).unwrap();
        assert_eq!(rules(&config).unwrap_err().0, "mapping.birth_date.format");
    }
}
