/**
 * EXPLAIN plan shapes for a row's note: the node types of each statement an operation ran (captured
 * with the SDK's onQuery hook), so a sequential scan shows up next to the number it explains.
 *
 * The hook gives a statement's text, not its parameter values, so statements are explained with
 * `EXPLAIN (GENERIC_PLAN)` (PostgreSQL ≥ 16): the plan for any values — the one a prepared statement
 * settles on. Each runs as the runtime role (`sv_app`) with the tenant set, so row-level security
 * shapes the plan as it does for the application.
 */
import type postgres from "postgres";

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Function Name"?: string;
  "CTE Name"?: string;
  "Subplan Name"?: string;
  Plans?: PlanNode[];
}

/** "Index Scan using users_email_unique on users" and the like. */
function describe(node: PlanNode): string {
  const on = node["Relation Name"] ? ` on ${node["Relation Name"]}` : "";
  if (node["Index Name"]) return `${node["Node Type"]} using ${node["Index Name"]}${on}`;
  if (node["Function Name"]) return `${node["Node Type"]} ${node["Function Name"]}()`;
  if (node["CTE Name"]) return `${node["Node Type"]} ${node["CTE Name"]}`;
  return `${node["Node Type"]}${on}`;
}

/** The plan as one line: `Limit > Sort > Append(12x Seq Scan on audit_logs_y…)`. */
export function planShape(node: PlanNode): string {
  const children = node.Plans ?? [];
  const self = describe(node);
  if (children.length === 0) return self;
  if (children.length === 1) return `${self} > ${planShape(children[0]!)}`;
  // Partitions: the same shape once per partition reads better as a count.
  const counts = new Map<string, number>();
  for (const child of children) {
    const shape = planShape(child).replace(/audit_logs_(y\d{4}m\d{2}|default)/g, "audit_logs_<partition>");
    counts.set(shape, (counts.get(shape) ?? 0) + 1);
  }
  const parts = [...counts].map(([shape, n]) => (n > 1 ? `${n}x ${shape}` : shape));
  return `${self}(${parts.join(", ")})`;
}

/** Statements worth a plan: reads and writes that look rows up (not BEGIN, SET, plain INSERTs…). */
export function explainable(statement: string): boolean {
  const text = statement.trim().toLowerCase();
  if (/^(begin|commit|rollback|savepoint|release|set |listen|unlisten|notify)/.test(text)) return false;
  if (/^select\s+set_config\(/.test(text) || /^select pg_notify/.test(text)) return false;
  if (/^insert\b/.test(text) && !/\bselect\b|\bon conflict\b/.test(text.slice(0, 2000))) return false;
  return /^(select|with|update|delete|insert)\b/.test(text);
}

/**
 * The generic plan shape of each distinct statement, run as sv_app in `tenant` (null: none, "*":
 * every tenant). Statements that cannot be explained say why instead of failing the row.
 */
export async function planShapes(
  owner: postgres.Sql,
  statements: string[],
  tenant: string | null = null,
): Promise<string[]> {
  const shapes: string[] = [];
  // Planner settings the code sets for its own reads (audit pages price sorting out) apply here too.
  const plannerSettings = [...new Set(statements)].filter((s) => /^\s*select\s+set_config\('enable_/i.test(s));
  for (const statement of [...new Set(statements)].filter(explainable)) {
    try {
      // EXPLAIN without ANALYZE runs nothing; the role and the tenant are local to the transaction.
      const plan = (await owner.begin(async (tx) => {
        await tx.unsafe("set local role sv_app");
        await tx`select set_config('sv.tenant_id', ${tenant ?? ""}, true)`;
        for (const setting of plannerSettings) await tx.unsafe(setting);
        const [row] = await tx.unsafe<{ "QUERY PLAN": { Plan: PlanNode }[] }[]>(
          `explain (generic_plan, format json) ${statement}`,
        );
        return row!["QUERY PLAN"][0]!.Plan;
      })) as PlanNode;
      shapes.push(planShape(plan));
    } catch (error) {
      shapes.push(`(not explained: ${(error as Error).message.slice(0, 80)})`);
    }
  }
  return shapes;
}
