// Package classify holds the FaceID return-code catalog and classifies
// verification-result events against it: channel, code, outcome, billing and
// risk.
//
// The catalog is the embedded catalog.yaml (Default) or a file of the same
// form (Load); WithOverrides and WithOverridesNode add or replace codes and
// tags. Every catalog is parsed strictly: unknown or duplicate fields and
// invalid values are errors that name file:line and the field.
//
// A Classifier decodes one JSON event at a time (Decoder: the input contract's
// fields, with no allocation in steady state) and resolves it against the
// catalog into a Result. A message that breaks the input contract is rejected
// with a RejectError whose Reason is a closed set.
package classify
