/**
 * Pacemaker's XML of a 3-node cluster and a replica status, shared by the status and metrics
 * tests.
 *
 * @module
 */
import type { NodeProbe } from "../status.ts";

/** What `crm_mon -1 -A -r --output-as=xml` printed on a 3-node cluster (prm1 offline). */
export const CRM_MON = `<?xml version="1.0"?>
<pacemaker-result api-version="2.25" request="crm_mon -1 -A -r --output-as=xml">
  <summary>
    <stack type="corosync"/>
    <current_dc present="true" version="2.1.5" name="prm2" id="2" with_quorum="true"/>
    <nodes_configured number="3"/>
    <resources_configured number="6" disabled="0" blocked="0"/>
    <cluster_options stonith-enabled="true" symmetric-cluster="true" no-quorum-policy="stop" maintenance-mode="false" stop-all-resources="false"/>
  </summary>
  <nodes>
    <node name="prm1" id="1" online="false" standby="false" standby_onfail="false" maintenance="false" pending="false" unclean="false" shutdown="false" expected_up="false" is_dc="false" resources_running="0" type="member"/>
    <node name="prm2" id="2" online="true" standby="false" standby_onfail="false" maintenance="false" pending="false" unclean="false" shutdown="false" expected_up="true" is_dc="true" resources_running="3" type="member"/>
    <node name="prm3" id="3" online="true" standby="false" standby_onfail="false" maintenance="false" pending="false" unclean="false" shutdown="false" expected_up="true" is_dc="false" resources_running="2" type="member"/>
  </nodes>
  <resources>
    <resource id="fence_lab" resource_agent="stonith:fence_prm_lab" role="Started" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
      <node name="prm2" id="2" cached="true"/>
    </resource>
    <clone id="ms_mysql" multi_state="true" unique="false" managed="true" disabled="false" failed="false" failure_ignored="false">
      <resource id="p_mysql" resource_agent="ocf:prm:mysql_prm" role="Promoted" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
        <node name="prm2" id="2" cached="true"/>
      </resource>
      <resource id="p_mysql" resource_agent="ocf:prm:mysql_prm" role="Unpromoted" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
        <node name="prm3" id="3" cached="true"/>
      </resource>
      <resource id="p_mysql" resource_agent="ocf:prm:mysql_prm" role="Stopped" active="false" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="0"/>
    </clone>
    <resource id="vip_writer" resource_agent="ocf:heartbeat:IPaddr2" role="Started" active="true" orphaned="false" blocked="false" managed="true" failed="false" failure_ignored="false" nodes_running_on="1">
      <node name="prm2" id="2" cached="true"/>
    </resource>
  </resources>
  <node_attributes>
    <node name="prm2">
      <attribute name="master-p_mysql" value="1000"/>
      <attribute name="readable" value="1"/>
    </node>
    <node name="prm3">
      <attribute name="master-p_mysql" value="100"/>
      <attribute name="readable" value="0"/>
    </node>
  </node_attributes>
  <failures>
    <failure op_key="p_mysql_monitor_3000" node="prm3" exitstatus="error" exitreason="Evicting outdated replica: lagging &amp; &quot;late&quot;" exitcode="1" call="40" status="complete" last-rc-change="2026-11-22 09:00:01 +00:00" queued="0" exec="0" interval="3000" task="monitor"/>
    <failure op_key="vip_writer_monitor_5000" node="prm3" exitstatus="not running" exitreason="" exitcode="7" call="9" status="complete" last-rc-change="2026-11-22 09:00:02 +00:00" queued="0" exec="0" interval="5000" task="monitor"/>
  </failures>
  <status code="0" message="OK"/>
</pacemaker-result>
`;

/** What `cibadmin -Q` printed for the same cluster. */
export const CIB =
  `<cib crm_feature_set="3.16.2" validate-with="pacemaker-3.9" epoch="12" num_updates="4" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="o-stonith" name="stonith-enabled" value="true"/>
      </cluster_property_set>
      <cluster_property_set id="mysql_replication">
        <nvpair id="mysql_replication-p_mysql_REPL_INFO" name="p_mysql_REPL_INFO" value="prm2|mysql-bin.000002|1234"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources>
      <primitive id="fence_lab" class="stonith" type="fence_prm_lab"/>
      <clone id="ms_mysql">
        <meta_attributes id="ms_mysql-meta">
          <nvpair id="ms_mysql-promotable" name="promotable" value="true"/>
          <nvpair id="ms_mysql-notify" name="notify" value="true"/>
        </meta_attributes>
        <primitive id="p_mysql" class="ocf" provider="prm" type="mysql_prm">
          <instance_attributes id="p_mysql-ia">
            <nvpair id="p_mysql-ia-cf" name="credentials_file" value="/etc/mysql/prm.cnf"/>
            <nvpair id="p_mysql-ia-hb" name="heartbeat" value="true"/>
            <nvpair id="p_mysql-ia-port" name="replication_port" value="3307"/>
            <nvpair id="p_mysql-ia-lag" name="max_slave_lag" value="5"/>
          </instance_attributes>
        </primitive>
      </clone>
    </resources>
    <constraints>
      <rsc_colocation id="col_writer" score="INFINITY" rsc="vip_writer" with-rsc="ms_mysql" with-rsc-role="Promoted"/>
    </constraints>
  </configuration>
  <status/>
</cib>
`;

/** A healthy replica of prm2, with fields overridden. */
export function replica(
  over: Partial<NodeProbe["replica"]> = {},
): NonNullable<NodeProbe["replica"]> {
  return {
    masterHost: "prm2",
    masterPort: 3307,
    ioRunning: "Yes",
    sqlRunning: true,
    lastIoErrno: 0,
    lastIoError: "",
    lastSqlErrno: 0,
    lastSqlError: "",
    secondsBehind: 0,
    masterLogFile: "mysql-bin.000002",
    readMasterLogPos: 5000,
    relayMasterLogFile: "mysql-bin.000002",
    execMasterLogPos: 5000,
    sqlState: "",
    gtidIoPos: "",
    relayLogFile: "relay-bin.000002",
    relayLogPos: 600,
    ...over,
  };
}
