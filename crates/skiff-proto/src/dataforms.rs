//! XEP-0004: Data Forms (the minimal subset Skiff needs).
//!
//! Forms ride inside other payloads: the stream-method negotiation of XEP-0095/0096
//! (through XEP-0020 feature negotiation) and the extensions of a disco#info result
//! (XEP-0128, e.g. the `max-file-size` of an XEP-0363 upload service). Titles,
//! instructions, `<reported/>` and `<item/>` are ignored; fields keep their var, type,
//! label, values and option values.

use crate::error::{expect, req_attr, ParseError};
use crate::ns;
use crate::xml::Element;

/// The `type` attribute of `<x xmlns='jabber:x:data'/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormType {
    Form,
    Submit,
    Result,
    Cancel,
}

impl FormType {
    pub fn as_str(self) -> &'static str {
        match self {
            FormType::Form => "form",
            FormType::Submit => "submit",
            FormType::Result => "result",
            FormType::Cancel => "cancel",
        }
    }
}

impl std::str::FromStr for FormType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "form" => FormType::Form,
            "submit" => FormType::Submit,
            "result" => FormType::Result,
            "cancel" => FormType::Cancel,
            _ => return Err(()),
        })
    }
}

/// One `<field/>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Field {
    pub var: String,
    /// The field type (`list-single`, `hidden`, …); absent means `text-single`.
    pub kind: Option<String>,
    pub label: Option<String>,
    pub values: Vec<String>,
    /// The `<value/>` of each `<option/>`, in document order.
    pub options: Vec<String>,
}

impl Field {
    /// A field with a var and nothing else.
    pub fn new(var: impl Into<String>) -> Field {
        Field { var: var.into(), ..Field::default() }
    }

    /// The first value, if any.
    pub fn value(&self) -> Option<&str> {
        self.values.first().map(String::as_str)
    }
}

impl TryFrom<&Element> for Field {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<Field, ParseError> {
        expect(el, "field", ns::DATA_FORMS)?;
        let var = req_attr(el, "field", "var")?.to_owned();
        let values = el.children_named("value", ns::DATA_FORMS).map(Element::text).collect();
        // An <option/> without a <value/> offers nothing: skip it.
        let options =
            el.children_named("option", ns::DATA_FORMS).filter_map(|o| o.child_text("value", ns::DATA_FORMS)).collect();
        Ok(Field {
            var,
            kind: el.attr("type").map(str::to_owned),
            label: el.attr("label").map(str::to_owned),
            values,
            options,
        })
    }
}

impl From<&Field> for Element {
    fn from(f: &Field) -> Element {
        let value = |v: &String| Element::new("value", ns::DATA_FORMS).with_text(v.as_str());
        Element::new("field", ns::DATA_FORMS)
            .with_attr("var", f.var.as_str())
            .with_opt_attr("type", f.kind.as_deref())
            .with_opt_attr("label", f.label.as_deref())
            .with_children(f.options.iter().map(|o| Element::new("option", ns::DATA_FORMS).with_child(value(o))))
            .with_children(f.values.iter().map(value))
    }
}

/// `<x xmlns='jabber:x:data'/>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataForm {
    pub kind: FormType,
    /// The value of the hidden `FORM_TYPE` field (not repeated in `fields`).
    pub form_type: Option<String>,
    pub fields: Vec<Field>,
}

impl DataForm {
    pub fn new(kind: FormType) -> DataForm {
        DataForm { kind, form_type: None, fields: Vec::new() }
    }

    /// The field with this var.
    pub fn field(&self, var: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.var == var)
    }
}

impl TryFrom<&Element> for DataForm {
    type Error = ParseError;

    fn try_from(el: &Element) -> Result<DataForm, ParseError> {
        expect(el, "x", ns::DATA_FORMS)?;
        let ty = req_attr(el, "x", "type")?;
        let kind = ty.parse().map_err(|()| ParseError::invalid("x", format!("unknown form type '{ty}'")))?;
        let mut form = DataForm::new(kind);
        for f in el.children_named("field", ns::DATA_FORMS) {
            // Fixed fields are labels for humans and may lack a var.
            if f.attr("var").is_none() && f.attr("type") == Some("fixed") {
                continue;
            }
            let field = Field::try_from(f)?;
            if field.var == "FORM_TYPE" && form.form_type.is_none() {
                form.form_type = field.values.into_iter().next();
            } else {
                form.fields.push(field);
            }
        }
        Ok(form)
    }
}

impl From<&DataForm> for Element {
    fn from(form: &DataForm) -> Element {
        let form_type = form.form_type.as_ref().map(|t| {
            let f = Field { kind: Some("hidden".into()), values: vec![t.clone()], ..Field::new("FORM_TYPE") };
            Element::from(&f)
        });
        Element::new("x", ns::DATA_FORMS)
            .with_attr("type", form.kind.as_str())
            .with_children(form_type)
            .with_children(form.fields.iter().map(Element::from))
    }
}

impl From<DataForm> for Element {
    fn from(form: DataForm) -> Element {
        Element::from(&form)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(s: &str) -> Element {
        s.parse().unwrap()
    }

    #[test]
    fn round_trip_with_form_type() {
        let xml = "<x xmlns='jabber:x:data' type='result'>\
            <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>\
            <field var='max-file-size'><value>1048576</value></field></x>";
        let form = DataForm::try_from(&el(xml)).unwrap();
        assert_eq!(form.kind, FormType::Result);
        assert_eq!(form.form_type.as_deref(), Some("urn:xmpp:http:upload:0"));
        assert_eq!(form.fields.len(), 1);
        assert_eq!(form.field("max-file-size").and_then(Field::value), Some("1048576"));
        assert_eq!(Element::from(&form), el(xml));
    }

    #[test]
    fn round_trip_options() {
        let xml = "<x xmlns='jabber:x:data' type='form'>\
            <field var='stream-method' type='list-single' label='Method'>\
            <option><value>a</value></option><option><value>b</value></option></field></x>";
        let form = DataForm::try_from(&el(xml)).unwrap();
        let f = form.field("stream-method").unwrap();
        assert_eq!(f.options, ["a", "b"]);
        assert_eq!(f.kind.as_deref(), Some("list-single"));
        assert_eq!(f.label.as_deref(), Some("Method"));
        assert_eq!(f.value(), None);
        assert_eq!(Element::from(form), el(xml));
    }

    #[test]
    fn fixed_field_without_var_is_skipped() {
        let xml = "<x xmlns='jabber:x:data' type='form'><title>T</title>\
            <field type='fixed'><value>Read this</value></field><field var='a'/></x>";
        let form = DataForm::try_from(&el(xml)).unwrap();
        assert_eq!(form.fields, vec![Field::new("a")]);
    }

    #[test]
    fn bad_input() {
        assert_eq!(
            DataForm::try_from(&el("<x xmlns='jabber:x:data'/>")),
            Err(ParseError::MissingAttr { element: "x", attr: "type" })
        );
        assert_eq!(
            DataForm::try_from(&el("<x xmlns='jabber:x:data' type='nonsense'/>")),
            Err(ParseError::invalid("x", "unknown form type 'nonsense'"))
        );
        assert_eq!(
            DataForm::try_from(&el("<x xmlns='jabber:x:data' type='form'><field type='text-single'/></x>")),
            Err(ParseError::MissingAttr { element: "field", attr: "var" })
        );
        assert!(DataForm::try_from(&el("<x xmlns='jabber:x:oob'/>")).unwrap_err().is_not_mine());
    }
}
