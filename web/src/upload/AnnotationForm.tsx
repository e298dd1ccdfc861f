// The annotation controls generated from the served schema, with each server message
// next to its control (linked by aria-describedby, so screen readers read it too).
import { type ReactNode, useId } from "react";
import {
  type FieldSpec,
  type FormValue,
  type FormValues,
  type JsonSchema,
  type SectionSpec,
  directionOptions,
  humanize,
} from "./schemaForm";

interface Props {
  readonly schema: JsonSchema;
  readonly sections: readonly SectionSpec[];
  readonly values: FormValues;
  readonly errors: Readonly<Record<string, readonly string[]>>;
  readonly onChange: (key: string, value: FormValue) => void;
  /** More controls shown at the end of a section, by section key (the camera-path editor). */
  readonly extra?: Readonly<Record<string, ReactNode>>;
}

function describedBy(...ids: (string | null)[]): string | undefined {
  const present = ids.filter((id): id is string => id !== null);
  return present.length > 0 ? present.join(" ") : undefined;
}

function Messages({ id, messages }: { id: string; messages: readonly string[] | undefined }) {
  if (messages === undefined || messages.length === 0) return null;
  return (
    <p id={id} className="uf-error">
      {messages.join(" ")}
    </p>
  );
}

function Field({
  field,
  value,
  options,
  messages,
  onChange,
}: {
  field: FieldSpec;
  value: FormValue | undefined;
  options: readonly string[];
  messages: readonly string[] | undefined;
  onChange: (value: FormValue) => void;
}) {
  const id = useId();
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const invalid = messages !== undefined && messages.length > 0;
  const hint = field.kind === "tags" ? `${field.description} Separate them with commas.` : field.description;
  const description = describedBy(hint === "" ? null : hintId, invalid ? errorId : null);
  const text = typeof value === "string" ? value : "";
  const common = {
    id,
    "aria-describedby": description,
    "aria-invalid": invalid || undefined,
    "aria-required": field.required || undefined,
  };
  // The asterisk is for eyes; aria-required tells assistive technology.
  const label = (
    <>
      {field.label}
      {field.required ? (
        <span aria-hidden="true" className="uf-required">
          {" "}
          *
        </span>
      ) : null}
    </>
  );

  if (field.kind === "multiselect") {
    const chosen = Array.isArray(value) ? value : [];
    return (
      <fieldset className="uf-field uf-choices" aria-describedby={description}>
        <legend>{label}</legend>
        {hint !== "" ? <p id={hintId} className="uf-hint">{hint}</p> : null}
        <div className="uf-choice-list">
          {options.map((option) => (
            <label key={option} className="uf-choice">
              <input
                type="checkbox"
                checked={chosen.includes(option)}
                onChange={(event) =>
                  onChange(event.target.checked ? [...chosen, option] : chosen.filter((term) => term !== option))
                }
              />
              {humanize(option)}
            </label>
          ))}
        </div>
        <Messages id={errorId} messages={messages} />
      </fieldset>
    );
  }
  if (field.kind === "checkbox") {
    return (
      <div className="uf-field uf-check">
        <input {...common} type="checkbox" checked={value === true} onChange={(event) => onChange(event.target.checked)} />
        <label htmlFor={id}>{field.label}</label>
        {hint !== "" ? <p id={hintId} className="uf-hint">{hint}</p> : null}
        <Messages id={errorId} messages={messages} />
      </div>
    );
  }
  let control;
  if (field.kind === "select") {
    control = (
      <select {...common} value={text} onChange={(event) => onChange(event.target.value)}>
        <option value="">{field.required ? "Choose…" : "Not specified"}</option>
        {options.map((option) => (
          <option key={option} value={option}>
            {humanize(option)}
          </option>
        ))}
      </select>
    );
  } else if (field.kind === "textarea") {
    control = <textarea {...common} rows={3} value={text} onChange={(event) => onChange(event.target.value)} />;
  } else if (field.kind === "number") {
    control = (
      <input
        {...common}
        type="number"
        inputMode={field.integer === true ? "numeric" : "decimal"}
        min={field.min}
        max={field.max}
        step={field.integer === true ? 1 : "any"}
        value={text}
        onChange={(event) => onChange(event.target.value)}
      />
    );
  } else {
    control = <input {...common} type="text" value={text} onChange={(event) => onChange(event.target.value)} />;
  }
  return (
    <div className="uf-field">
      <label htmlFor={id}>{label}</label>
      {control}
      {hint !== "" ? <p id={hintId} className="uf-hint">{hint}</p> : null}
      <Messages id={errorId} messages={messages} />
    </div>
  );
}

function Section({
  schema,
  section,
  values,
  errors,
  onChange,
  extra,
}: Omit<Props, "sections" | "extra"> & { section: SectionSpec; extra: ReactNode }) {
  const id = useId();
  const enabled = !section.optional || values[section.key] === true;
  const sectionErrors = errors[section.key];
  const errorId = `${id}-error`;
  const movement = typeof values["camera.movement"] === "string" ? values["camera.movement"] : "";
  return (
    <fieldset
      className="uf-section"
      aria-describedby={sectionErrors !== undefined && sectionErrors.length > 0 ? errorId : undefined}
    >
      <legend>{section.title}</legend>
      <Messages id={errorId} messages={sectionErrors} />
      {section.optional ? (
        <div className="uf-field uf-check">
          <input
            id={`${id}-enable`}
            type="checkbox"
            checked={enabled}
            onChange={(event) => onChange(section.key, event.target.checked)}
          />
          <label htmlFor={`${id}-enable`}>Describe the {section.title.toLowerCase()}</label>
        </div>
      ) : null}
      {enabled
        ? section.fields.map((field) => {
            let options = field.options;
            if (field.key === "camera.direction") {
              // Which directions fit depends on the movement (the schema's if/then rules).
              options = movement === "" ? [] : directionOptions(schema, movement);
              if (options.length === 0) return null;
            }
            return (
              <Field
                key={field.key}
                field={field}
                value={values[field.key]}
                options={options}
                messages={errors[field.key]}
                onChange={(value) => onChange(field.key, value)}
              />
            );
          })
        : null}
      {enabled ? extra : null}
    </fieldset>
  );
}

/** Every section of the annotation, in the schema's terms. */
export function AnnotationForm({ schema, sections, values, errors, onChange, extra }: Props) {
  return (
    <div className="uf-sections">
      {sections.map((section) => (
        <Section
          key={section.key}
          schema={schema}
          section={section}
          values={values}
          errors={errors}
          onChange={onChange}
          extra={extra?.[section.key]}
        />
      ))}
    </div>
  );
}
