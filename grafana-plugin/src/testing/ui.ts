/*
 * Driving @grafana/ui's selects the way a user does: click the field, pick
 * an option from the menu Grafana renders.
 */
import { selectors } from '@grafana/e2e-selectors';
import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';

export type User = ReturnType<typeof userEvent.setup>;

/** Opens the menu of the select labelled label and returns it. */
export async function openMenu(user: User, label: string): Promise<HTMLElement> {
  await user.click(screen.getByLabelText(label));
  return screen.findByTestId(selectors.components.Select.menu);
}

/** The labels of the options a menu offers, in order. */
export function optionLabels(menu: HTMLElement): string[] {
  return within(menu)
    .getAllByTestId(selectors.components.Select.option)
    .map((o) => o.querySelector('span')?.textContent ?? '');
}

/** Picks an option of the select labelled label. */
export async function choose(user: User, label: string, option: string): Promise<void> {
  const menu = await openMenu(user, label);
  await user.click(within(menu).getByText(option, { selector: 'span' }));
}

/** Types a value that is not among the options (a select that allows custom values) and takes it. */
export async function typeCustom(user: User, label: string, value: string): Promise<void> {
  await user.click(screen.getByLabelText(label));
  await user.keyboard(value);
  await user.keyboard('{Enter}');
}

/** The field (label and control) labelled label, to read what it shows. */
export function fieldOf(label: string): HTMLElement {
  const input = screen.getByLabelText(label);
  const field = document.querySelector(`label[for="${input.id}"]`)?.parentElement;
  if (!field) {
    throw new Error(`${label} is not inside an InlineField`);
  }
  return field;
}

/** Removes a chosen value of the multi-value select labelled label. */
export async function removeValue(user: User, label: string, value: string): Promise<void> {
  const chip = within(fieldOf(label)).getByText(value).parentElement;
  if (!chip) {
    throw new Error(`${label} shows no ${value}`);
  }
  await user.click(within(chip).getByRole('button', { name: 'Remove' }));
}
