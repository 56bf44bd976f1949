/// What the provider is and which optional JMS features it supports (JMS `ConnectionMetaData`).
public struct ConnectionMetaData: Sendable, Hashable {
    /// The version of the JMS API this follows: `"3.1"` (Jakarta Messaging 3.1).
    public let jmsVersion = "3.1"
    /// The JMS major version: 3.
    public let jmsMajorVersion = 3
    /// The JMS minor version: 1.
    public let jmsMinorVersion = 1
    /// The provider's name: `"Conveyor"`.
    public let providerName = "Conveyor"
    /// The provider's version.
    public let providerVersion = "0.1.0"
    /// The provider's major version.
    public let providerMajorVersion = 0
    /// The provider's minor version.
    public let providerMinorVersion = 1
    /// The JMS-defined `JMSX` properties the provider supports: the message-group pair
    /// (`JMSXGroupID`, `JMSXGroupSeq`) and `JMSXDeliveryCount`, which every delivered message carries.
    public let jmsxPropertyNames = ["JMSXGroupID", "JMSXGroupSeq", "JMSXDeliveryCount"]
}
